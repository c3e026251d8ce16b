//! Function names are a value passed to the formatter, not process-wide state.

use tracemark::{Config, Mode};
use tracemark_decoder::dump::Dump;
use tracemark_decoder::filter::Filter;
use tracemark_decoder::pipeline::{self, Selection};
use tracemark_decoder::render::{Format, FunctionNames};
use tracemark_tests::ring_image;

/// A ring calling functions 0x100 and 0x200.
fn calls() -> Vec<u8> {
    let config = Config {
        mode: Mode::Drop,
        block_size: 256,
        clock_hz: 1_000_000_000,
        ..Config::new()
    };
    ring_image(&config, 4, 1000, |t, clock| {
        for f in [0x100, 0x200] {
            t.function_entry(f);
            clock.advance(10);
            t.function_exit(f);
            clock.advance(10);
        }
    })
}

fn decode(image: &[u8], format: Format, names: Option<&FunctionNames>) -> String {
    let dump = Dump::parse(image).expect("a ring written by the encoder");
    let filters = vec![Filter::default().for_ring(0); dump.rings.len()];
    let selection = Selection {
        rings: &[0],
        filters: &filters,
        format,
        names,
        thread_names: None,
    };
    let mut out = Vec::new();
    let warnings = pipeline::write(&dump, &selection, 2, &mut out, &|_| {}).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    String::from_utf8(out).unwrap()
}

/// Two dumps decoded in one process with two symbol tables get their own names (a
/// process-wide table set once would give the first table's names to both), and a
/// dump decoded without a table gets addresses only.
#[test]
fn two_dumps_with_two_symbol_tables_get_their_own_names() {
    let kernel: FunctionNames = [(0x100, "kernel_a".into()), (0x200, "kernel_b".into())].into();
    let app: FunctionNames = [(0x100, "app_a".into()), (0x200, "app_b".into())].into();
    let (one, two) = (calls(), calls());

    let text = decode(&one, Format::Text, Some(&kernel));
    let fentry: Vec<&str> = text.lines().filter(|l| l.contains(" FENTRY ")).collect();
    assert_eq!(fentry.len(), 2, "{text}");
    assert!(fentry[0].ends_with("FENTRY 0x100 kernel_a"), "{text}");
    assert!(fentry[1].ends_with("FENTRY 0x200 kernel_b"), "{text}");

    let text = decode(&two, Format::Text, Some(&app));
    assert!(text.contains("FENTRY 0x100 app_a"), "{text}");
    assert!(text.contains("FEXIT 0x200 app_b"), "{text}");
    assert!(!text.contains("kernel_"), "{text}");

    let json = decode(&two, Format::Json, Some(&app));
    assert!(json.contains(r#""symbol":"app_a""#), "{json}");

    let bare = decode(&one, Format::Text, None);
    assert!(bare.contains("FENTRY 0x100\n"), "{bare}");
    assert!(
        !bare.contains("kernel_") && !bare.contains("app_"),
        "{bare}"
    );
}
