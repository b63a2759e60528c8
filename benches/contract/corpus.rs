//! Deterministic config-like text for the benchmark hosts.
//!
//! Real ESXi state is small text files: `esx.conf` key paths, hostd XML, `key = value` configs,
//! comments, and a few PEM blocks. This generator mixes those line shapes from a seeded PRNG so
//! the bytes compress like real configuration (about 4x with gzip -6), not like zeros or noise,
//! and every run of the benchmark sees the same host.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A small, seeded xorshift generator (the benchmark must not depend on `rand`).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A size between `lo` and `hi`, log-uniform (many small files, a few large ones).
    pub fn log_size(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        let t = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (a + (b - a) * t).exp() as u64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        // Squaring the draw favours the first items, as word use does.
        let t = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        items[((t * t) * items.len() as f64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "host",
    "service",
    "network",
    "config",
    "value",
    "default",
    "enabled",
    "port",
    "address",
    "server",
    "name",
    "level",
    "timeout",
    "user",
    "group",
    "path",
    "file",
    "log",
    "system",
    "storage",
    "adapter",
    "virtual",
    "switch",
    "vmknic",
    "portgroup",
    "uplink",
    "mtu",
    "policy",
    "security",
    "firewall",
    "rule",
    "allowed",
    "ip",
    "netmask",
    "gateway",
    "dns",
    "ntp",
    "syslog",
    "remote",
    "local",
    "datastore",
    "volume",
    "device",
    "driver",
    "module",
    "option",
    "restart",
    "when",
    "changed",
    "is",
    "to",
    "of",
    "and",
    "for",
    "this",
    "not",
    "must",
    "be",
    "set",
    "only",
    "if",
    "in",
    "on",
    "with",
    "advanced",
    "memory",
    "cpu",
    "scheduler",
    "power",
    "management",
    "agent",
    "daemon",
    "certificate",
    "key",
    "trust",
];
const KEYS: &[&str] = &[
    "net/pnic/child",
    "net/vswitch/child",
    "adv/Net",
    "adv/Misc",
    "adv/Disk",
    "firewall/services",
    "system/uuid",
    "resourceGroups/root/user",
    "storage/lun",
    "vmkernel/module",
    "nas/mounts",
    "hostd/plugins",
    "security/accounts",
    "syslog/global",
    "ntp/server",
    "autostart/vm",
];
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sentence(rng: &mut Rng, out: &mut String, min: u64, spread: u64) {
    let words = min + rng.below(spread);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
}

fn line(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write as _;
    match rng.below(10) {
        0..=3 => {
            let key = rng.pick(KEYS);
            let n = rng.below(64);
            let _ = match rng.below(3) {
                0 => writeln!(
                    out,
                    "/{key}[{n:04}]/mac = \"00:50:56:{:02x}:{:02x}:{:02x}\"",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                ),
                1 => writeln!(
                    out,
                    "/{key}[{n:04}]/{} = \"{}\"",
                    rng.pick(WORDS),
                    rng.below(100_000)
                ),
                _ => writeln!(
                    out,
                    "/{key}/{}/{} = \"{}\"",
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    rng.pick(WORDS)
                ),
            };
        }
        4..=5 => {
            let tag = rng.pick(WORDS);
            let _ = write!(
                out,
                "{:indent$}<{tag}>",
                "",
                indent = (rng.below(4) * 2) as usize
            );
            sentence(rng, out, 1, 3);
            let _ = writeln!(out, "</{tag}>");
        }
        6..=7 => {
            let _ = write!(out, "{}_{} = ", rng.pick(WORDS), rng.pick(WORDS));
            match rng.below(3) {
                0 => {
                    let _ = writeln!(out, "{}", rng.below(65_536));
                }
                1 => {
                    let _ = writeln!(
                        out,
                        "10.{}.{}.{}",
                        rng.below(256),
                        rng.below(256),
                        rng.below(256)
                    );
                }
                _ => {
                    sentence(rng, out, 1, 3);
                    out.push('\n');
                }
            }
        }
        8 => {
            out.push_str("# ");
            sentence(rng, out, 4, 10);
            out.push('\n');
        }
        _ => {
            // A PEM-like line: base64 of key material compresses poorly, as it does in rui.crt.
            if rng.below(4) == 0 {
                for _ in 0..64 {
                    out.push(B64[rng.below(64) as usize] as char);
                }
                out.push('\n');
            } else {
                out.push('\n');
            }
        }
    }
}

/// Config-like text of exactly `size` bytes.
pub fn text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 256);
    while out.len() < size {
        line(rng, &mut out);
    }
    out.truncate(size);
    out.into_bytes()
}

/// Lays out `count` modified flagged files (mode 1644, each with the empty `.#` branch ESXi
/// leaves, so the default selection persists them) under `root/etc` in nested directories, sizes
/// log-uniform in `[lo, hi]` scaled so the total is about `total` bytes when given.
pub fn host(root: &Path, seed: u64, count: usize, lo: u64, hi: u64, total: Option<u64>) -> u64 {
    let mut rng = Rng::new(seed);
    let sizes: Vec<u64> = (0..count).map(|_| rng.log_size(lo, hi)).collect();
    let sum: u64 = sizes.iter().sum();
    let scale = total.map_or(1.0, |t| t as f64 / sum as f64);
    let mut written = 0;
    for (i, size) in sizes.iter().enumerate() {
        let size = ((*size as f64) * scale) as usize;
        let dir = root.join(format!("etc/d{:02}/s{:02}", i % 37, (i / 37) % 11));
        fs::create_dir_all(&dir).expect("create bench dir");
        let name = format!("{}-{i}.conf", rng.pick(WORDS));
        fs::File::create(dir.join(format!(".#{name}"))).expect("create bench branch");
        let path = dir.join(name);
        let mut file = fs::File::create(&path).expect("create bench file");
        file.write_all(&text(&mut rng, size))
            .expect("write bench file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o1644)).expect("chmod");
        filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1_700_000_000, 0))
            .expect("mtime");
        written += size as u64;
    }
    written
}
