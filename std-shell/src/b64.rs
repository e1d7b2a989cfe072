//! The base64 codec handed to the core: the `base64` crate's SIMD engine (AVX2 on x86_64, NEON
//! on aarch64), chosen once at run time, or the portable engine where the CPU has neither. A
//! large `guest-file-read` spends most of the agent's user time encoding, so this is where the
//! platform can help the core (which stays `no_std` and portable).

use std::sync::OnceLock;

use base64::Engine as _;
use qga_core::Base64Codec;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod engines {
    use super::OnceLock;
    use base64::engine::{DecodePaddingMode, GeneralPurposeConfig, Simd};

    /// Encoding: padded, as qemu-ga writes.
    pub fn encoder() -> &'static Simd {
        static E: OnceLock<Simd> = OnceLock::new();
        E.get_or_init(|| Simd::standard(GeneralPurposeConfig::new()))
    }

    /// Decoding as the core's portable decoder: trailing bits kept by GLib are accepted, padding
    /// optional.
    pub fn decoder() -> &'static Simd {
        static D: OnceLock<Simd> = OnceLock::new();
        D.get_or_init(|| {
            Simd::standard(
                GeneralPurposeConfig::new()
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent),
            )
        })
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn encode(input: &[u8], output: &mut [u8]) -> Option<usize> {
    engines::encoder().encode_slice(input, output).ok()
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn decode(input: &[u8], output: &mut [u8]) -> Option<usize> {
    engines::decoder().decode_slice(input, output).ok()
}

/// The fastest codec for this CPU.
pub fn codec() -> Base64Codec {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // Detect now, not during the first transfer.
        let _ = (engines::encoder(), engines::decoder());
        Base64Codec { encode, decode }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Base64Codec::PORTABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte generator (xorshift).
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn same_results_as_the_portable_codec() {
        let fast = codec();
        let slow = Base64Codec::PORTABLE;
        for n in (0..300).chain([1024, 4095, 4096, 65_535, 1 << 20]) {
            let data = bytes(n as u64 + 7, n);
            let mut a = vec![0u8; n.div_ceil(3) * 4];
            let mut b = a.clone();
            let la = (fast.encode)(&data, &mut a);
            let lb = (slow.encode)(&data, &mut b);
            assert_eq!(la, lb, "encode length, n={n}");
            assert_eq!(a, b, "encoding, n={n}");
            // Too small an output fails on both.
            if n > 0 {
                let mut short = vec![0u8; a.len() - 1];
                assert_eq!((fast.encode)(&data, &mut short), None);
            }
            // Decoding back, and the GLib-style leniency on the last group.
            let mut da = vec![0u8; n + 3];
            let mut db = da.clone();
            assert_eq!((fast.decode)(&a, &mut da), (slow.decode)(&b, &mut db));
            assert_eq!(da, db);
            assert_eq!(&da[..n], &data[..]);
        }
        for text in [
            &b"QQ=="[..],
            b"QR==",
            b"QUI=",
            b"QUJ=",
            b"QUJD",
            b"QQ",
            b"Q===",
            b"QU!D",
            b"====",
            b"QUJDRA==QUJD",
        ] {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            assert_eq!(
                (fast.decode)(text, &mut a),
                (slow.decode)(text, &mut b),
                "{}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(a, b);
        }
        // Long text with an invalid character anywhere is refused by both.
        let mut text = vec![b'Q'; 4096];
        for at in [0, 31, 32, 33, 1000, 4095] {
            text[at] = b'*';
            let mut a = vec![0u8; 4096];
            let mut b = a.clone();
            assert_eq!((fast.decode)(&text, &mut a), None);
            assert_eq!((slow.decode)(&text, &mut b), None);
            text[at] = b'Q';
        }
    }
}
