//! Tests of the runner itself: parsing, every failure reported, malformed
//! blocks refused, rewriting, and the per-file macro on `testdata/echo`.

use super::*;

/// `upper X` upper-cases X; `lines N` prints 1..=N one per line.
fn echo(command: &str) -> String {
    match command.split_once(' ') {
        Some(("upper", rest)) => rest.to_uppercase(),
        Some(("lines", n)) => (1..=n.parse::<u32>().unwrap())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => panic!("unknown command {command:?}"),
    }
}

fn echo_runner() -> fn(&str) -> String {
    echo
}

mod golden {
    crate::test_each_file! {
        dir: "testdata/echo",
        runner: super::echo_runner,
        files: [lines, words],
    }
}

#[test]
fn parse_keeps_comments_and_line_numbers() {
    let text = "# about a\nupper a\n----\nA\n\n# only a comment\n\n\nupper b\n----\nB\n";
    let blocks = parse(text).unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].line, 1);
    assert_eq!(blocks[0].comments, "# about a\n");
    assert_eq!(blocks[0].command.as_deref(), Some("upper a"));
    assert_eq!(blocks[0].expected, "A");
    assert_eq!(blocks[1].command, None);
    assert_eq!(blocks[1].line, 6);
    assert_eq!(blocks[2].line, 9);
    assert_eq!(blocks[2].command.as_deref(), Some("upper b"));
}

#[test]
fn a_block_with_two_commands_is_refused() {
    let text =
        "upper a\nupper b\n----\nB\n\nupper c\n----\nC\n\nupper d\n# note\nupper e\n----\nE\n";
    let errors = parse(text).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("line 1:"), "{}", errors[0]);
    assert!(errors[0].contains("upper a") && errors[0].contains("upper b"));
    assert!(errors[1].starts_with("line 10:"), "{}", errors[1]);
    // Nothing runs: the runner would panic if called.
    let mut never = |_: &str| -> String { unreachable!("a malformed file is not run") };
    assert!(check(text, &mut never).is_err());
}

#[test]
fn check_reports_every_mismatching_block() {
    let text = "upper a\n----\nA\n\nupper b\n----\nwrong\n\nupper c\n----\nalso wrong\n";
    let outcome = check(text, &mut echo_runner()).unwrap();
    assert_eq!(outcome.failures.len(), 2, "{:?}", outcome.failures);
    assert!(outcome.failures[0].starts_with("line 5: upper b"));
    assert!(outcome.failures[1].starts_with("line 9: upper c"));
    assert_eq!(
        outcome.rewritten,
        "upper a\n----\nA\n\nupper b\n----\nB\n\nupper c\n----\nC\n"
    );
}

#[test]
fn a_block_without_expected_output_gets_one_when_rewritten() {
    let text = "# new\nupper x\n";
    let outcome = check(text, &mut echo_runner()).unwrap();
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.rewritten, "# new\nupper x\n----\nX\n");
}

#[test]
fn a_correct_file_rewrites_to_itself() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/echo");
    for file in files_in(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let outcome = check(&text, &mut echo_runner()).unwrap();
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        assert_eq!(outcome.rewritten, text, "{}", file.display());
    }
}

#[test]
fn run_dir_names_every_failing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a_good.txt"), "upper a\n----\nA\n").unwrap();
    std::fs::write(dir.path().join("b_bad.txt"), "upper b\n----\nnope\n").unwrap();
    std::fs::write(dir.path().join("c_bad.txt"), "upper c\n----\nnope\n").unwrap();
    std::fs::write(dir.path().join("d_malformed.txt"), "upper d\nupper e\n").unwrap();
    std::fs::write(dir.path().join("ignored.md"), "not a scenario").unwrap();
    let panic = catch_unwind(|| run_dir(dir.path(), echo_runner)).unwrap_err();
    let message = panic_message(&*panic);
    assert!(
        message.starts_with("3 of 4 scenario files failed"),
        "{message}"
    );
    for name in ["b_bad.txt", "c_bad.txt", "d_malformed.txt"] {
        assert!(message.contains(name), "{name} missing from {message}");
    }
    assert!(!message.contains("a_good.txt"), "{message}");
}

#[test]
fn assert_listed_catches_unlisted_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.txt"), "").unwrap();
    std::fs::write(dir.path().join("two.txt"), "").unwrap();
    assert_listed(dir.path(), &["one", "two"]);
    let unlisted = catch_unwind(|| assert_listed(dir.path(), &["one"])).unwrap_err();
    assert!(panic_message(&*unlisted).contains("\"two\""));
    let missing = catch_unwind(|| assert_listed(dir.path(), &["one", "two", "three"])).unwrap_err();
    assert!(panic_message(&*missing).contains("\"three\""));
}
