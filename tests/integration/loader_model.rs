//! The banks as the real loader sees them (issue 12): a table of boot.cfg pairs, each with the
//! decision of vmware/esx-boot and the source line it follows (commit 32924c6); after each
//! statectl write of boot.cfg, the model's reading agrees with what statectl reported.

use std::fs;

use crate::testenv::TestEnv;

/// A boot.cfg with everything but `updated` (and the lines of `extra`, appended).
fn cfg(build: &str, extra: &str) -> Vec<u8> {
    format!(
        "bootstate=0\ntitle=Loading VMware ESXi\nkernel=/b.b00\nmodules=/s.v00\nbuild={build}\n{extra}"
    )
    .into_bytes()
}

const BUILD: &str = "7.0.3-0.20.19193900";

/// One row: the bootbank's and altbootbank's files, the loader's next bank (None: neither),
/// whether it is a tie, the `updated` the loader holds for the altbootbank (when checked),
/// and the esx-boot lines the decision comes from.
struct Case {
    name: &'static str,
    boot: Vec<u8>,
    alt: Vec<u8>,
    next: Option<&'static str>,
    tie: bool,
    alt_updated: Option<u64>,
    source: &'static str,
}

fn case(
    name: &'static str,
    alt_extra: &str,
    next: Option<&'static str>,
    source: &'static str,
) -> Case {
    Case {
        name,
        boot: cfg(BUILD, "updated=5\n"),
        alt: cfg(BUILD, alt_extra),
        next,
        tie: false,
        alt_updated: None,
        source,
    }
}

fn with_updated(mut c: Case, updated: u64) -> Case {
    c.alt_updated = Some(updated);
    c
}

const ALT: Option<&str> = Some("altbootbank");
const BOOT: Option<&str> = Some("bootbank");

fn padded_bootstate(state: u8) -> Vec<u8> {
    let head = format!("kernel=/b.b00\nkernelopt={}\n", "x".repeat(520));
    format!("{head}build={BUILD}\nbootstate={state}\nupdated=6\n").into_bytes()
}

fn table() -> Vec<Case> {
    let mut rows = vec![
        with_updated(
            case(
                "higher updated boots",
                "updated=6\n",
                ALT,
                "safeboot/bootbank.c:237",
            ),
            6,
        ),
        with_updated(
            case(
                "blank before = hides the key",
                "updated = 6\n",
                BOOT,
                "bootlib/parse.c:60-64 (loop tests sep_start[0], the `=`)",
            ),
            0,
        ),
        with_updated(
            case(
                "blank after = is skipped",
                "updated= 6\n",
                ALT,
                "bootlib/parse.c:69",
            ),
            6,
        ),
        case(
            "upper-case key",
            "UPDATED=6\n",
            ALT,
            "bootlib/parse.c:64 strncasecmp",
        ),
        case(
            "mixed-case key",
            "UpDaTeD=6\n",
            ALT,
            "bootlib/parse.c:64 strncasecmp",
        ),
        with_updated(
            case(
                "last duplicate wins (lower)",
                "updated=6\nupdated=4\n",
                BOOT,
                "bootlib/parse.c:167-193 each line overwrites",
            ),
            4,
        ),
        with_updated(
            case(
                "last duplicate wins (higher)",
                "updated=4\nupdated=6\n",
                ALT,
                "bootlib/parse.c:167-193",
            ),
            6,
        ),
        case(
            "tab before = is a blank",
            "updated\t=6\n",
            BOOT,
            "bootlib/string.c:116 merges it to a space; parse.c:64",
        ),
        case(
            "blanks around the line are trimmed",
            "   updated=6   \n",
            ALT,
            "bootlib/string.c:116",
        ),
        case("no final newline", "updated=6", ALT, "bootlib/parse.c:169"),
        case(
            "plus sign is malformed: file unusable",
            "updated=+6\n",
            BOOT,
            "bootlib/string.c:427 is_number; parse.c:119; bootbank.c:142",
        ),
        case(
            "hex is malformed",
            "updated=0x10\n",
            BOOT,
            "bootlib/string.c:427",
        ),
        case(
            "trailing comment is malformed",
            "updated=6 # x\n",
            BOOT,
            "bootlib/string.c:427",
        ),
        with_updated(
            case(
                "2^32 wraps to 0",
                "updated=4294967296\n",
                BOOT,
                "libc/standard.c:258 (int)strtol; bootbank.c:150",
            ),
            0,
        ),
        with_updated(
            case(
                "2^32+6 wraps to 6",
                "updated=4294967302\n",
                ALT,
                "libc/standard.c:258",
            ),
            6,
        ),
        with_updated(
            case(
                "-1 is 2^32-1 to uint32_t",
                "updated=-1\n",
                ALT,
                "safeboot/safeboot.h uint32_t updated; config.c:70",
            ),
            4_294_967_295,
        ),
        with_updated(
            case(
                "huge saturates to LONG_MAX, cast -1",
                "updated=99999999999999999999\n",
                ALT,
                "libc/standard.c:124 overflow",
            ),
            4_294_967_295,
        ),
        with_updated(
            case(
                "huge negative saturates to LONG_MIN, cast 0",
                "updated=-99999999999999999999\n",
                BOOT,
                "libc/standard.c:121",
            ),
            0,
        ),
        with_updated(
            case(
                "empty value is 0",
                "updated=\n",
                BOOT,
                "bootlib/parse.c:105",
            ),
            0,
        ),
        with_updated(
            case(
                "a lone minus is a number, 0",
                "updated=-\n",
                BOOT,
                "bootlib/string.c:429",
            ),
            0,
        ),
        with_updated(
            case(
                "leading zeros are decimal",
                "updated=007\n",
                ALT,
                "libc/standard.c:258 base 10",
            ),
            7,
        ),
        with_updated(
            case(
                "key prefix up= is updated",
                "up=9\n",
                ALT,
                "bootlib/parse.c:64 compares only the n bytes before =",
            ),
            9,
        ),
        with_updated(
            case(
                "key prefix u= is updated",
                "u=9\n",
                ALT,
                "bootlib/parse.c:64",
            ),
            9,
        ),
        case(
            "longer key is not updated",
            "updatedx=9\n",
            BOOT,
            "libc/string.c:278 stops at the key's NUL",
        ),
        case("commented line", "#updated=9\n", BOOT, "bootlib/parse.c:96"),
        case(
            "indented comment",
            "  # updated=9\n",
            BOOT,
            "bootlib/string.c:116 then parse.c:96",
        ),
        case(
            "stray line without =",
            "this line has no separator\nupdated=6\n",
            ALT,
            "bootlib/parse.c:52",
        ),
        case(
            "unknown key",
            "frobnicate=1\nupdated=6\n",
            ALT,
            "bootlib/parse.c:130",
        ),
        case(
            "quickboot=2 is quick boot",
            "updated=6\nquickboot=2\n",
            BOOT,
            "safeboot/bootbank.c:182 any non-zero",
        ),
        case(
            "quickboot=yes is malformed",
            "updated=6\nquickboot=yes\n",
            BOOT,
            "bootlib/string.c:427",
        ),
        case(
            "quickboot=0",
            "updated=6\nquickboot=0\n",
            ALT,
            "safeboot/bootbank.c:182",
        ),
        case(
            "bootstate=1 in the window",
            "updated=6\nbootstate=1\n",
            ALT,
            "safeboot/bootbank.c:161; config.c:191",
        ),
        case(
            "bootstate=2 becomes 3",
            "updated=6\nbootstate=2\n",
            BOOT,
            "safeboot/bootbank.c:165",
        ),
        case(
            "bootstate=3 is invalid",
            "updated=6\nbootstate=3\n",
            BOOT,
            "safeboot/bootbank.c:203",
        ),
        case(
            "bootstate=4 is no state",
            "updated=6\nbootstate=4\n",
            BOOT,
            "safeboot/bootbank.c:174",
        ),
        case(
            "bootstate = 1 is not read: 0",
            "updated=6\nbootstate = 1\n",
            ALT,
            "bootlib/parse.c:64; default 0 config.c:25",
        ),
        case(
            "NBSP before = is a blank",
            "updated\u{a0}=6\n",
            BOOT,
            "libc/ctypes.c NBSP is C_SPACE; string.c:116",
        ),
        case(
            "NUL ends the line",
            "updated=6\0junk\n",
            ALT,
            "bootlib/parse.c:178 C string",
        ),
    ];
    rows.push(Case {
        name: "empty key is the first option, build",
        alt: b"bootstate=0\nkernel=/b.b00\n=7.0.3-0.20.19193900\nupdated=6\n".to_vec(),
        ..case(
            "",
            "",
            ALT,
            "bootlib/parse.c:64 with n=0; safeboot/config.c:23 build first",
        )
    });
    rows.push(Case {
        name: "empty build",
        alt: b"bootstate=0\nkernel=/b.b00\nbuild=\nupdated=6\n".to_vec(),
        ..case("", "", BOOT, "safeboot/bootbank.c:154")
    });
    rows.push(Case {
        name: "build with a blank before =",
        alt: b"bootstate=0\nkernel=/b.b00\nbuild = 8.0.0\nupdated=6\n".to_vec(),
        ..case("", "", BOOT, "bootlib/parse.c:64; bootbank.c:154")
    });
    rows.push(Case {
        name: "CRLF file",
        alt: cfg(BUILD, "updated=6\n")
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect(),
        ..case("", "", ALT, "bootlib/string.c:116 CR is C_SPACE")
    });
    rows.push(Case {
        name: "Latin-1 title",
        alt: [
            cfg(BUILD, "updated=6\n"),
            b"title=Caf\xe9 \xc9t\xe9\n".to_vec(),
        ]
        .concat(),
        ..case("", "", ALT, "libc/ctypes.c ISO-8859-1; parse.c:130")
    });
    rows.push(Case {
        name: "bootstate=1 past byte 512",
        alt: padded_bootstate(1),
        ..case(
            "",
            "",
            BOOT,
            "safeboot/config.c:191 MIN(size, 512); bootbank.c:196-199 drops the bank",
        )
    });
    rows.push(Case {
        name: "bootstate=0 past byte 512 needs no patch",
        alt: padded_bootstate(0),
        ..case(
            "",
            "",
            ALT,
            "safeboot/bootbank.c:195 no new state, no patch",
        )
    });
    rows.push(Case {
        name: "tie goes to the first scanned",
        tie: true,
        ..case("", "updated=5\n", BOOT, "safeboot/bootbank.c:237 strict >")
    });
    rows.push(Case {
        name: "neither bank eligible",
        boot: cfg(BUILD, "updated=5\nbootstate=3\n"),
        ..case("", "updated = 6\n", None, "safeboot/bootbank.c:244")
    });
    rows.push(Case {
        name: "unusable bootbank file",
        boot: cfg(BUILD, "updated=+5\n"),
        ..case(
            "",
            "updated=1\n",
            ALT,
            "bootlib/parse.c:119; bootbank.c:142",
        )
    });
    rows.push(Case {
        name: "bootbank updated with a blank",
        boot: cfg(BUILD, "updated = 5\n"),
        ..case("", "updated=1\n", ALT, "bootlib/parse.c:64; bootbank.c:150")
    });
    rows
}

#[test]
fn the_loaders_choice_over_a_table_of_boot_cfg_pairs() {
    let rows = table();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let env = TestEnv::new();
    for row in rows {
        fs::write(env.bank("bootbank").join("boot.cfg"), &row.boot).unwrap();
        fs::write(env.bank("altbootbank").join("boot.cfg"), &row.alt).unwrap();
        let status = env.run(&["bank", "status", "--json"]).ok().json();
        let why = format!("{} ({})", row.name, row.source);
        assert_eq!(status["next_boot"].as_str(), row.next, "{why}");
        assert_eq!(status["tie"], row.tie, "{why}");
        if let Some(updated) = row.alt_updated {
            assert_eq!(status["banks"][1]["updated"], updated, "{why}");
        }
    }
}
