//! Ceilings on what one template may do for one artifact: bytes written, and `range()`
//! elements asked for. A team's template with a runaway loop would otherwise grow an artifact
//! until memory runs out, or spin for hours; rendering stops at a ceiling instead, with a
//! diagnostic naming the template. Not bounded: values built without writing (`set` of a
//! string doubled in a loop), which no shipped template does.

use std::cell::Cell;
use std::io::{self, Write};
use tera::{Error, Kwargs, State, TeraResult};

/// The most one rule's artifact may hold; a rule's query is a few KB. A pack artifact (the
/// pack's ARM template, savedsearches.conf) holds every rule, so it gets this much per rule:
/// a 10,000-rule pack's ARM template is about 60 MB.
pub const MAX_ARTIFACT_BYTES: usize = 4 << 20;

/// Passes a template's output on to `inner` and refuses writes past its limit; tera stops
/// rendering at the first refused write. A write that `inner` refuses (a full disk) stops it
/// too, and is kept to be reported as what it is, not as a template error.
pub struct Budget<W: Write> {
    pub inner: W,
    written: usize,
    limit: usize,
    pub exceeded: bool,
    pub failed: Option<io::Error>,
}

impl<W: Write> Budget<W> {
    pub fn new(inner: W, limit: usize) -> Budget<W> {
        Budget {
            inner,
            written: 0,
            limit,
            exceeded: false,
            failed: None,
        }
    }
}

impl<W: Write> Write for Budget<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("the artifact is over its size budget"));
        }
        self.written += buf.len();
        if let Err(e) = self.inner.write_all(buf) {
            let told = io::Error::new(e.kind(), e.to_string());
            self.failed = Some(e);
            return Err(told);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The most `range()` elements one artifact may ask for, over all calls. Tera caps one call at
/// 100,000 elements, but nested loops multiply: a loop in a loop that writes little spins for
/// hours under the output ceiling. Shipped templates call `range()` not at all.
pub const MAX_RANGE_ELEMENTS: u64 = 1_000_000;

thread_local! {
    /// `range()` elements left for the artifact this thread renders.
    static RANGE_LEFT: Cell<u64> = const { Cell::new(MAX_RANGE_ELEMENTS) };
    static RANGE_EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// Starts an artifact's budget on this thread (an artifact renders on one thread).
pub fn start() {
    RANGE_LEFT.set(MAX_RANGE_ELEMENTS);
    RANGE_EXCEEDED.set(false);
}

/// Whether the artifact rendered since `start` asked for more `range()` elements than allowed.
pub fn range_exceeded() -> bool {
    RANGE_EXCEEDED.get()
}

/// tera's `range(start=0, end, step_by=1)`, charged to the artifact's budget.
pub fn range(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i64>> {
    let start = kwargs.get::<i64>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i64>("end")?;
    let step = kwargs.get::<i64>("step_by")?.unwrap_or(1);
    if step == 0 {
        return Err(Error::message("`range` was called with `step_by=0`"));
    }
    let span = i128::from(end) - i128::from(start);
    let len = if (span > 0) == (step > 0) && span != 0 {
        let step = i128::from(step);
        ((span + step - step.signum()) / step).unsigned_abs()
    } else {
        0
    };
    let left = RANGE_LEFT.get();
    if len > u128::from(left) {
        RANGE_EXCEEDED.set(true);
        return Err(Error::message(format!(
            "`range` calls of this artifact ask for more than {MAX_RANGE_ELEMENTS} elements"
        )));
    }
    RANGE_LEFT.set(left - len as u64);
    Ok((0..len as i64).map(|i| start + i * step).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn range_matches_teras_and_is_charged() {
        let mut tera = tera::Tera::default();
        tera.register_function("range", super::range);
        let render = |t: &str| tera.render_str(t, &tera::Context::new(), false);
        super::start();
        assert_eq!(render("{{ range(end=3) }}").unwrap(), "[0, 1, 2]");
        assert_eq!(
            render("{{ range(start=5, end=0, step_by=-2) }}").unwrap(),
            "[5, 3, 1]"
        );
        assert_eq!(
            render("{{ range(start=1, end=8, step_by=3) }}").unwrap(),
            "[1, 4, 7]"
        );
        assert_eq!(render("{{ range(start=3, end=1) }}").unwrap(), "[]");
        assert!(!super::range_exceeded());
        let nested = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% endfor %}{% endfor %}";
        assert!(render(nested).is_err());
        assert!(super::range_exceeded());
    }
}
