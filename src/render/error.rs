//! What can go wrong while rendering a valid rule: a backend folder that does not cover it.

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("fields.yml maps no field `{0}`")]
    UnmappedField(String),
    #[error("fields.yml maps no array `{0}`")]
    UnmappedArray(String),
    #[error("`{field}` is used outside a quantifier over `{array}`")]
    Unbound { field: String, array: String },
    #[error("backend.yml declares no `{0}` section")]
    MissingSection(&'static str),
    #[error("the `where` of output `{0}` cannot quantify over a nested array")]
    NestedOutputFilter(String),
    #[error("Sigma cannot express {0}")]
    SigmaUnsupported(String),
}
