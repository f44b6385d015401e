//! Rolling PIN performance (PERFORMANCE.md "Rolling PIN", PROTOCOL.md Part 3):
//!
//! - `rolling_pin/{sha1,sha256,sha512}`: one PIN as the phone shows it (HMAC key, HOTP,
//!   slot prefix), 6 digits, 60 s period;
//! - `keypad_worst_case/495x3`: a keypad holding 495 rolling keys checking a code that
//!   matches none of them: `matching_step` on every key, 3 steps each = 1485 HOTPs.
//!
//! `cargo bench -p opkey-protocol --bench pin` runs criterion (short warm-up and
//! measurement: the machine is shared). `cargo bench -p opkey-protocol --bench pin --
//! --plain` skips criterion and prints machine-readable lines for `scripts/bench-pin`:
//!
//! ```text
//! PINBENCH op=<name> ns_per_op=<median ns>
//! PINCODE alg=<sha1|sha256|sha512> digits=<d> period=<s> seed_hex=<hex> t=<unix s> code=<code>
//! PINWORST keys=495 alg=sha256 digits=6 period=60 t=<unix s> code=<code>
//! ```
//!
//! The seeds are the RFC 6238 Appendix B ones (ASCII "1234567890" repeated to 20, 32 and
//! 64 bytes) and, for the keypad, [`keypad_seed`]: the script rebuilds the same ones.

use criterion::Criterion;
use opkey_protocol::pin::{KeypadSlot, PinAlgorithm, PinSeed, PinSpec, matching_step, rolling_pin};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The instant the benchmarks compute PINs for (2023-11-14).
const T: i64 = 1_700_000_000;
/// Keys on the worst-case keypad.
const KEYS: usize = 495;

fn rfc_seed(algorithm: PinAlgorithm) -> PinSeed {
    let bytes = b"1234567890"
        .iter()
        .copied()
        .cycle()
        .take(algorithm.seed_len())
        .collect();
    PinSeed::new(bytes).expect("non-empty")
}

/// The seed of keypad key `i` (0-based): 32 bytes, `(31·i + 7·j + 1) mod 256`.
fn keypad_seed(i: usize) -> PinSeed {
    let bytes = (0..32).map(|j| ((31 * i + 7 * j + 1) % 256) as u8).collect();
    PinSeed::new(bytes).expect("non-empty")
}

fn spec(algorithm: PinAlgorithm) -> PinSpec {
    PinSpec {
        algorithm,
        digits: 6,
        period_s: 60,
    }
}

struct Keypad {
    seeds: Vec<PinSeed>,
    spec: PinSpec,
    /// A 6-digit code no key accepts at [`T`]: every key's three steps are computed.
    code: String,
}

impl Keypad {
    fn new() -> Self {
        let seeds: Vec<PinSeed> = (0..KEYS).map(keypad_seed).collect();
        let spec = spec(PinAlgorithm::Sha256);
        let code = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|code| seeds.iter().all(|s| matching_step(s, &spec, code, T).is_none()))
            .expect("1485 codes cannot cover a million");
        Self { seeds, spec, code }
    }

    /// The keypad's check over every key; `None` every time for [`Keypad::code`].
    fn check(&self, code: &str, t: i64) -> Option<(usize, u64)> {
        self.seeds
            .iter()
            .enumerate()
            .find_map(|(i, s)| matching_step(s, &self.spec, code, t).map(|step| (i, step)))
    }
}

fn criterion_benches(c: &mut Criterion) {
    let slot = KeypadSlot::new(42).expect("slot");
    let mut group = c.benchmark_group("rolling_pin");
    for algorithm in PinAlgorithm::ALL {
        let seed = rfc_seed(algorithm);
        let spec = spec(algorithm);
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| rolling_pin(black_box(&seed), &spec, slot, black_box(T)))
        });
    }
    group.finish();

    let keypad = Keypad::new();
    let mut group = c.benchmark_group("keypad_worst_case");
    group.bench_function("495x3", |b| {
        b.iter(|| {
            let found = keypad.check(black_box(&keypad.code), black_box(T));
            assert!(found.is_none());
        })
    });
    group.finish();
}

/// Median ns per call of `f` over `batches` batches of `per_batch` calls.
fn median_ns(batches: usize, per_batch: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..per_batch {
        f();
    }
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(per_batch)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `--plain`: medians with `Instant`, and sample codes for the cross-check.
fn plain() {
    let slot = KeypadSlot::new(42).expect("slot");
    for algorithm in PinAlgorithm::ALL {
        let seed = rfc_seed(algorithm);
        let spec = spec(algorithm);
        let ns = median_ns(101, 2_000, || {
            black_box(rolling_pin(black_box(&seed), &spec, slot, black_box(T)));
        });
        println!("PINBENCH op=rolling_pin_{algorithm} ns_per_op={ns:.1}");
        // RFC 6238 Appendix B times, then the bench's instant; 6 and 8 digits.
        for t in [
            59,
            1_111_111_109,
            1_111_111_111,
            1_234_567_890,
            2_000_000_000,
            20_000_000_000,
            T,
        ] {
            for digits in [6, 8] {
                let spec = PinSpec { digits, ..spec };
                let pin = rolling_pin(&seed, &spec, slot, t);
                println!(
                    "PINCODE alg={algorithm} digits={digits} period={} seed_hex={} t={t} code={}",
                    spec.period_s,
                    hex(seed.as_bytes()),
                    &pin.pin[3..]
                );
            }
        }
    }

    let keypad = Keypad::new();
    let ns = median_ns(41, 5, || {
        assert!(keypad.check(black_box(&keypad.code), black_box(T)).is_none());
    });
    println!("PINBENCH op=keypad_worst_case_495x3 ns_per_op={ns:.1}");
    println!(
        "PINWORST keys={KEYS} alg={} digits={} period={} t={T} code={}",
        keypad.spec.algorithm, keypad.spec.digits, keypad.spec.period_s, keypad.code
    );
}

fn main() {
    if std::env::args().any(|a| a == "--plain") {
        plain();
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
