//! Each SIMD level this CPU has, forced in turn through `NIN_SIMD`: the flex kernels' outputs
//! and gradients still match burn's modules. The tests that hold them to burn's modules run
//! again in a child process of this binary at each level (the level is process-wide), and
//! [`the_active_level_is_the_one_nin_simd_names`] checks in each child that the cap took hold.
//! The library's unit tests hold every level's vector loops to the portable ones directly.
#![cfg(feature = "flex")]

use std::process::Command;

use nin::names::Named;
use nin::ops::SimdLevel;

/// The tests run again at each level: the training path's convolutions, pools and batch norm
/// on whole presets (`fast_path`), the inference path's direct kernels (`blocked`), and the
/// layers on their own, with their NaN and tie cases (`conv2d`, `max_pool`).
const AT_EACH_LEVEL: [&str; 5] = [
    "simd_levels::the_active_level_is_the_one_nin_simd_names",
    "fast_path::whole_presets_match_the_reference_on_flex",
    "blocked::",
    "conv2d::",
    "max_pool::",
];

#[test]
fn every_simd_level_matches_burns_modules() {
    let binary = std::env::current_exe().expect("the test binary's path");
    let levels = SimdLevel::available();
    println!("levels this CPU has: {levels:?}");
    for level in levels {
        let started = std::time::Instant::now();
        let output = Command::new(&binary)
            .args(AT_EACH_LEVEL)
            // One at a time: the tests seed flex's one generator, and another test drawing from
            // it meanwhile would give them other weights than their seed does.
            .arg("--test-threads=1")
            .env("NIN_SIMD", level.name())
            .output()
            .expect("the test binary runs again");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "at {level:?} ({}) the kernels' tests failed:\n{stdout}\n{}",
            level.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        // Filters that matched nothing would pass without testing anything.
        let passed = stdout
            .lines()
            .find_map(|line| line.strip_prefix("test result: ok. "))
            .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .expect("the child prints libtest's summary");
        assert!(
            passed >= 10,
            "at {level:?} only {passed} tests ran:\n{stdout}"
        );
        println!(
            "{}: {passed} tests passed in {:.1} s",
            level.label(),
            started.elapsed().as_secs_f64()
        );
    }
}

/// Run by [`every_simd_level_matches_burns_modules`] at each level, and on its own in this
/// process: the kernels run at the level `NIN_SIMD` names, or at the detected one without it.
#[test]
fn the_active_level_is_the_one_nin_simd_names() {
    let expected = match std::env::var("NIN_SIMD") {
        Ok(name) => name.parse().expect("NIN_SIMD names a level"),
        Err(_) => SimdLevel::detected(),
    };
    assert_eq!(SimdLevel::active(), expected);
}
