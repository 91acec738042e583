// The fuzz harness every `fuzz_*` target shares, included (`include!`) by each crate's fuzz tests so no crate
// depends on another for testing. See docs/fuzzing.md.
//
// A target is a closure over bytes. `fuzz(name, dict, f)` first replays every file of
// `fuzz/corpus/<name>/` (the committed seeds and any regression inputs), then hands bolero a closure whose
// raw input is read as a *mutation program* over those seeds: byte 0 picks the mode (1 in 8: the raw bytes
// themselves, unseeded), byte 1 the seed, the rest a list of edits (bit flips, byte sets, inserts, deletes,
// dictionary tokens, splices from other seeds, repeats). On stable `cargo test`/`nextest`, bolero feeds that
// closure random raw bytes; under `cargo bolero test` (libFuzzer/AFL, nightly) the same closure is
// coverage-guided, the engines evolving the programs.
//
// Two modes. By default (tests, CI) the programs are a fixed sequence: `OPENFC_FUZZ_ITERATIONS` (default
// 10,000) programs drawn from a splitmix64 stream seeded by `OPENFC_FUZZ_SEED` — the same inputs on every
// machine, so a change fails or passes CI by what it changed, never by how far a random run got. A slow
// machine may stop at a time cap (`DETERMINISTIC_CAP`) and so runs a prefix of the same sequence: it can find
// less, never something else. With `OPENFC_FUZZ_SECONDS` set (scripts/fuzz.sh) bolero draws random programs
// from the OS for that long. A failing input is printed (escaped) and written to
// `target/fuzz-crashes/<name>/<fnv64>`; copy it into the corpus folder as a regression seed once fixed.

#[allow(dead_code)]
pub mod harness {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    use std::path::PathBuf;
    use std::time::Duration;

    /// Inputs longer than this are cut: the parsers' own limits are exercised by the seeds' shapes, not size.
    pub const MAX_INPUT: usize = 64 * 1024;

    pub fn workspace_root() -> PathBuf {
        // Every crate lives at <root>/crates/<name>.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    pub fn corpus_dir(name: &str) -> PathBuf {
        workspace_root().join("fuzz/corpus").join(name)
    }

    /// The committed seeds of a target, in file-name order.
    pub fn seeds(name: &str) -> Vec<Vec<u8>> {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert!(!seeds.is_empty(), "fuzz corpus {} is empty", dir.display());
        seeds
    }

    /// How long a random (exploring) run lasts per target; `None`: the fixed sequence.
    pub fn budget() -> Option<Duration> {
        let secs = std::env::var("OPENFC_FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok())?;
        Some(Duration::from_secs_f64(secs.max(0.0)))
    }

    fn env_u64(name: &str, default: u64) -> u64 {
        std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    /// The fixed sequence stops here even if it has not run every program (a loaded or slow machine).
    pub const DETERMINISTIC_CAP: Duration = Duration::from_secs(20);

    /// splitmix64: a tiny, well-mixed stream; its only job is to be the same everywhere.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A raw program of 0..=512 bytes, most of them short (short programs keep the seeds recognisable).
        fn program(&mut self) -> Vec<u8> {
            let len = match self.next() % 4 {
                0 => self.next() % 513,
                _ => self.next() % 33,
            } as usize;
            let mut out = Vec::with_capacity(len + 8);
            while out.len() < len {
                out.extend_from_slice(&self.next().to_le_bytes());
            }
            out.truncate(len);
            out
        }
    }

    fn fnv64(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
    }

    /// Reads two bytes of the program as a number (0 when it ran out).
    fn take(program: &mut &[u8], n: usize) -> usize {
        let mut v = 0usize;
        for _ in 0..n {
            if let Some((&b, rest)) = program.split_first() {
                v = (v << 8) | b as usize;
                *program = rest;
            }
        }
        v
    }

    /// Applies the mutation program `raw` to the seeds (see the module comment).
    pub fn mutate(seeds: &[Vec<u8>], dict: &[&[u8]], raw: &[u8]) -> Vec<u8> {
        let mut program = raw;
        let mode = take(&mut program, 1);
        if mode % 8 == 7 {
            return program[..program.len().min(MAX_INPUT)].to_vec();
        }
        let mut data = seeds[take(&mut program, 1) % seeds.len()].clone();
        while !program.is_empty() {
            let op = take(&mut program, 1);
            let pos = take(&mut program, 2);
            let arg = take(&mut program, 1);
            let len = data.len();
            match op % 9 {
                0 if len > 0 => data[pos % len] ^= 1 << (arg % 8),
                1 if len > 0 => data[pos % len] = arg as u8,
                2 => data.insert(pos % (len + 1), arg as u8),
                3 if len > 0 => {
                    let at = pos % len;
                    let n = (arg % 16 + 1).min(len - at);
                    data.drain(at..at + n);
                }
                4 if !dict.is_empty() => {
                    let token = dict[arg % dict.len()];
                    let at = pos % (len + 1);
                    data.splice(at..at, token.iter().copied());
                }
                5 => {
                    // Splice: a piece of another seed.
                    let other = &seeds[arg % seeds.len()];
                    if !other.is_empty() {
                        let from = pos % other.len();
                        let n = (take(&mut program, 1) + 1).min(other.len() - from);
                        let at = if len == 0 { 0 } else { (pos / 7) % (len + 1) };
                        data.splice(at..at, other[from..from + n].iter().copied());
                    }
                }
                6 if len > 0 => {
                    // Repeat a short piece (long runs: nesting, big numbers).
                    let at = pos % len;
                    let n = (arg % 8 + 1).min(len - at);
                    let piece: Vec<u8> = data[at..at + n].to_vec();
                    for _ in 0..(take(&mut program, 1) % 64) {
                        data.splice(at..at, piece.iter().copied());
                    }
                }
                7 if len > 0 => data.truncate(pos % len),
                8 if len > 0 => {
                    // An "interesting" byte: boundaries of ASCII classes and UTF-8.
                    const SPECIAL: &[u8] = b"\0\x7f\x80\xff%/.*?&=+:;, \t\r\n\"\\{}[]$^-_@#~";
                    data[pos % len] = SPECIAL[arg % SPECIAL.len()];
                }
                _ => {}
            }
            if data.len() > MAX_INPUT {
                data.truncate(MAX_INPUT);
            }
        }
        data
    }

    fn run_one(name: &str, input: &[u8], f: &dyn Fn(&[u8])) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(input))) {
            let dir = workspace_root().join("target/fuzz-crashes").join(name);
            let path = dir.join(format!("{:016x}", fnv64(input)));
            let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, input));
            eprintln!(
                "fuzz target {name} failed on input ({} bytes, saved to {}):\n{}",
                input.len(),
                path.display(),
                input.escape_ascii()
            );
            resume_unwind(panic);
        }
    }

    /// Runs a target: the corpus, then mutated seeds (the fixed sequence, or random ones for the budget).
    pub fn fuzz(name: &str, dict: &[&[u8]], f: impl Fn(&[u8])) {
        let seeds = seeds(name);
        for seed in &seeds {
            run_one(name, seed, &f);
        }
        let Some(budget) = budget() else {
            let mut rng = SplitMix(env_u64("OPENFC_FUZZ_SEED", 20_261_208) ^ fnv64(name.as_bytes()));
            let started = std::time::Instant::now();
            for _ in 0..env_u64("OPENFC_FUZZ_ITERATIONS", 10_000) {
                if started.elapsed() > DETERMINISTIC_CAP {
                    break;
                }
                let input = mutate(&seeds, dict, &rng.program());
                run_one(name, &input, &f);
            }
            return;
        };
        if budget.is_zero() {
            return;
        }
        let f = AssertUnwindSafe(f);
        bolero::check!().with_test_time(budget).with_max_len(512).for_each(|raw: &[u8]| {
            let input = mutate(&seeds, dict, raw);
            run_one(name, &input, &*f);
        });
    }

    /// Splits `input` into at most `n` parts at `\n` (the last part keeps the rest): targets that take several
    /// strings read them this way, so the seeds stay readable text files.
    pub fn lines(input: &[u8], n: usize) -> Vec<String> {
        let text = String::from_utf8_lossy(input);
        let mut parts: Vec<String> = text.splitn(n, '\n').map(str::to_owned).collect();
        parts.resize(n, String::new());
        parts
    }
}
