//! Ids of artifacts derived from one rule (a Sigma correlation's base rules): RFC 9562 UUIDv5
//! with the rule's own id as the namespace and the artifact's role as the name, so anyone can
//! recompute them (`uuid.uuid5(uuid.UUID(rule_id), role)` in Python), they never change
//! between builds or releases, and they never collide with another rule's id. SHA-1 is written
//! out here (UUIDv5 fixes it; no SHA-1 crate is vendored), used for naming only, not security.

/// `uuid5(namespace = rule id, name = role)`; None if the rule id is not a UUID (validation
/// rejects such rules before rendering).
pub fn derived_uuid(rule_id: &str, role: &str) -> Option<String> {
    let hex: String = rule_id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut data: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    data.extend_from_slice(role.as_bytes());
    let mut b = sha1(&data);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5
    b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
    let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// FIPS 180-4 SHA-1.
fn sha1(input: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answers() {
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn matches_python_uuid5() {
        // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('5e83c012-…'), 'first'))"
        assert_eq!(
            derived_uuid("5e83c012-2320-4fe3-a0df-af8038720119", "first").as_deref(),
            Some("c7b6acd1-5f2e-55f0-98a8-ca2d81e80e9a")
        );
        // RFC 9562 appendix A.4: uuid5(NameSpace_DNS, "www.example.com").
        assert_eq!(
            derived_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com").as_deref(),
            Some("2ed6657d-e927-568b-95e1-2665a8aea6a2")
        );
        assert_eq!(derived_uuid("not-a-uuid", "first"), None);
    }
}
