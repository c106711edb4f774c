//! The browser page (`web/`): built for wasm32 with simd128, its glue written by the pinned
//! `wasm-bindgen` CLI, served on loopback and driven in headless Chromium through WebDriver
//! (`web/tests/browser.py`, Selenium). It must name the kept ankle boot, classify a drawn
//! stroke, show an error for bytes that are no image and keep working, and give the
//! probabilities native flex gives for the same 20 Fashion-MNIST test images, within 1e-4.
//!
//! Without the wasm32 target, the CLI, Chromium, ChromeDriver or Selenium the test prints why
//! and skips; `NIN_REQUIRE_WEB=1` makes that a failure. The Fashion-MNIST part skips likewise
//! under `NIN_REQUIRE_DATA`.
#![cfg(all(feature = "pretrained", feature = "flex"))]

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::data::dataset::Dataset;
use nin::data::{FashionMnist, Split};
use nin::pretrained::{Classifier, Weights};
use serde_json::Value;

const WEB: &str = "NIN_REQUIRE_WEB";
/// The wasm-bindgen version web/Cargo.toml pins; the CLI must be the same.
const WASM_BINDGEN: &str = "0.2.130";
/// The goal for the module's size, weights included.
const MAX_WASM_BYTES: u64 = 4 << 20;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command`, returning its stdout, or why it could not run or failed.
fn output(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|err| format!("{command:?} could not start: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What the page test needs outside the crate, or the first thing missing.
struct Tools {
    python: PathBuf,
}

fn tools() -> Result<Tools, String> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let wasm_std = Path::new(sysroot.trim()).join("lib/rustlib/wasm32-unknown-unknown");
    if !wasm_std.exists() {
        return Err(
            "the wasm32-unknown-unknown target is not installed (rustup target add \
             wasm32-unknown-unknown)"
                .into(),
        );
    }
    let version = output(Command::new("wasm-bindgen").arg("--version")).map_err(|err| {
        format!(
            "{err} (cargo install wasm-bindgen-cli --version {WASM_BINDGEN} --locked \
             --no-default-features)"
        )
    })?;
    if !version.contains(WASM_BINDGEN) {
        return Err(format!(
            "wasm-bindgen is {}, the page pins {WASM_BINDGEN}",
            version.trim()
        ));
    }
    for browser_part in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !Path::new(browser_part).exists() {
            return Err(format!(
                "{browser_part} is missing (apt-get install chromium chromium-driver)"
            ));
        }
    }
    // The first Python with Selenium: NIN_PYTHON's (the one with PyTorch, for other tests),
    // the one on the PATH, or Debian's (python3-selenium).
    let candidates = std::env::var_os("NIN_PYTHON")
        .into_iter()
        .chain(["python3".into(), "/usr/bin/python3".into()])
        .map(PathBuf::from);
    let mut reasons = Vec::new();
    for python in candidates {
        match output(Command::new(&python).args(["-c", "import selenium"])) {
            Ok(_) => return Ok(Tools { python }),
            Err(err) => reasons.push(err),
        }
    }
    Err(format!(
        "no Python with Selenium ({}): apt-get install python3-selenium, or pip install selenium",
        reasons.join("; ")
    ))
}

/// Builds the page into a fresh directory: `cargo build --release --target
/// wasm32-unknown-unknown` in `web/` (in a target directory of its own, beside this build's),
/// then `wasm-bindgen --target web --remove-name-section`, then the page's own files. Returns the directory and the
/// module's size.
fn build_page(out: &Path) -> (PathBuf, u64) {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"))
        .join("web");
    let web = manifest_dir().join("web");
    let built = Command::new(env!("CARGO"))
        .current_dir(&web)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("cargo starts");
    assert!(built.success(), "building web/ for wasm32 failed");
    let wasm = target_dir.join("wasm32-unknown-unknown/release/nin_web.wasm");
    let dist = out.join("dist");
    output(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--remove-name-section", "--out-dir"])
            .arg(&dist)
            .arg(&wasm),
    )
    .expect("wasm-bindgen writes the glue");
    for file in ["index.html", "index.js"] {
        std::fs::copy(web.join("dist").join(file), dist.join(file)).expect("the page's files");
    }
    let size = std::fs::metadata(dist.join("nin_web_bg.wasm"))
        .expect("the module")
        .len();
    (dist, size)
}

/// `python3 -m http.server` on a free loopback port, serving `dir`; killed on drop.
struct Server(Child, u16);

impl Server {
    fn start(python: &Path, dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(python)
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("-d")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the static server starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the static server never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server(child, port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first `count` Fashion-MNIST test images as PNG files in `dir`, or `None` after saying
/// why there are none.
fn test_images(test: &str, dir: &Path, count: usize) -> Option<Vec<PathBuf>> {
    let data = common::fashion_mnist_dir(test)?;
    let test_set = FashionMnist::from_dir(&data, Split::Test).expect("the test set reads");
    std::fs::create_dir_all(dir).unwrap();
    let paths = (0..count)
        .map(|index| {
            let item = test_set.get(index).expect("an item");
            let path = dir.join(format!("test-{index}.png"));
            image::GrayImage::from_raw(28, 28, item.pixels)
                .expect("28×28 pixels")
                .save(&path)
                .expect("the PNG is written");
            path
        })
        .collect();
    Some(paths)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Native flex's probabilities for each image and its median milliseconds per image, on one
/// thread as the page has.
fn native(images: &[PathBuf]) -> (Vec<Vec<f32>>, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        let device = nin::backend::device("flex").expect("flex");
        let classifier = Classifier::new(Weights::FashionMnistCompact, &device).expect("loads");
        let mut times = Vec::new();
        let probabilities = images
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).unwrap();
                let started = Instant::now();
                let seen = classifier.classify(&bytes, false).expect("classifies");
                times.push(started.elapsed().as_secs_f64() * 1e3);
                seen.probabilities
            })
            .collect();
        (probabilities, median(times))
    })
}

fn probabilities(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("ten probabilities")
        .iter()
        .map(|p| p.as_f64().expect("a number") as f32)
        .collect()
}

/// The three classes shown, most probable first, each with its probability.
fn ranked(shown: &Value) -> Vec<(String, f64)> {
    shown["ranked"]
        .as_array()
        .expect("ranked results")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("a class").to_string(),
                pair[1].as_f64().expect("a probability"),
            )
        })
        .collect()
}

#[test]
fn the_page_classifies_in_headless_chromium() {
    let test = "web";
    let tools = match tools() {
        Ok(tools) => tools,
        Err(reason) => return common::unavailable(test, "the browser test's tools", WEB, &reason),
    };
    let work = tempfile::tempdir().unwrap();
    let (dist, wasm_bytes) = build_page(work.path());
    println!("{test}: nin_web_bg.wasm is {wasm_bytes} bytes, weights included");
    assert!(
        wasm_bytes <= MAX_WASM_BYTES,
        "the module is {wasm_bytes} bytes, over {MAX_WASM_BYTES}"
    );

    let fixtures = work.path().join("fixtures");
    let golden = test_images(test, &fixtures, 50);
    let images = golden.clone().unwrap_or_default();
    let ankle = manifest_dir().join("weights/fashion_mnist_compact/test-0-ankle-boot.png");
    let screenshot = std::env::temp_dir().join("nin-web-page.png");

    let server = Server::start(&tools.python, &dist);
    let mut browser = Command::new(&tools.python);
    browser
        .arg(manifest_dir().join("web/tests/browser.py"))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}/index.html", server.1))
        .arg("--image")
        .arg(&ankle)
        .arg("--screenshot")
        .arg(&screenshot)
        .arg("--golden")
        .args(images.iter().take(20))
        .arg("--timing")
        .args(&images)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = browser.spawn().expect("the browser script starts");
    let mut report = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    let mut errors = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        errors.push_str(&line.unwrap_or_default());
        errors.push('\n');
    }
    let status = child.wait().unwrap();
    drop(server);
    assert!(
        status.success(),
        "the browser script failed ({status}):\n{errors}"
    );
    let report: Value = serde_json::from_str(report.trim()).expect("one JSON line");

    assert_eq!(
        report["loaded"]["state"], "ready",
        "the page loads: {report}"
    );
    let image = ranked(&report["image"]);
    assert_eq!(image[0].0, "Ankle boot", "the dropped image: {image:?}");
    println!("{test}: the dropped ankle boot reads {image:?}");

    let stroke = ranked(&report["stroke"]);
    assert_eq!(stroke.len(), 3, "three classes for a drawing: {stroke:?}");
    assert!(
        stroke.windows(2).all(|pair| pair[0].1 >= pair[1].1),
        "sorted: {stroke:?}"
    );
    let all = probabilities(&report["stroke"]["probabilities"]);
    let sum: f32 = all.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    println!(
        "{test}: a drawn stroke reads {stroke:?}, screenshot {}",
        screenshot.display()
    );

    let refused = &report["not_an_image"];
    assert_eq!(
        refused["state"], "error",
        "bytes that are no image: {refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("image")),
        "the error is shown: {refused}"
    );
    let after = ranked(&report["after_error"]);
    assert_eq!(after[0].0, "Ankle boot", "the page works after an error");
    assert_eq!(report["after_error"]["state"], "ready");

    let timings = &report["timings"];
    println!(
        "{test}: ready {:.0} ms and first classification shown {:.0} ms after navigation began",
        timings["ready"].as_f64().unwrap_or(f64::NAN),
        timings["firstClassification"].as_f64().unwrap_or(f64::NAN)
    );

    if golden.is_none() {
        return;
    }
    let (native_probabilities, native_ms) = native(&images);
    let browser_golden = report["golden"].as_array().expect("golden results");
    assert_eq!(browser_golden.len(), 20);
    for (index, (browser, native)) in browser_golden.iter().zip(&native_probabilities).enumerate() {
        let browser = probabilities(browser);
        let largest = browser
            .iter()
            .zip(native)
            .map(|(b, n)| (b - n).abs())
            .fold(0f32, f32::max);
        assert!(
            largest <= 1e-4,
            "test image {index}: browser and native differ by {largest}"
        );
    }
    let browser_ms = median(
        report["timing_ms"]
            .as_array()
            .expect("timings")
            .iter()
            .filter_map(Value::as_f64)
            .collect(),
    );
    // The native figure means something only where this test is built with optimisations.
    let build = if cfg!(debug_assertions) {
        "an unoptimised build; `cargo test --release --test all -- web::` times an optimised one"
    } else {
        "an optimised build"
    };
    println!(
        "{test}: 20 test images match native flex within 1e-4; median per image over {}: \
         {browser_ms:.2} ms in headless Chromium, {native_ms:.2} ms native ({build}), one \
         thread each",
        images.len()
    );
}
