//! The shipped Fashion-MNIST network in a web page: `nin::pretrained::Classifier` behind a
//! `wasm-bindgen` API for `dist/index.js`.
//!
//! ```text
//! const classifier = new Classifier();
//! const prediction = classifier.classify(pngBytes, false);
//! prediction.probabilities // Float32Array of ten, by class index
//! prediction.pixels        // Uint8Array of the 28×28 pixels the network saw
//! ```
//!
//! Every failure (bytes that are no image, weights that fail their check) comes back as a
//! JavaScript `Error` with the reason; nothing here panics on what the page passes in.

use nin::pretrained::{Classifier as NativeClassifier, Weights};
use wasm_bindgen::prelude::*;

/// The network with its shipped weights, on flex, loaded once.
#[wasm_bindgen]
pub struct Classifier {
    inner: NativeClassifier,
}

#[wasm_bindgen]
impl Classifier {
    /// Loads the embedded weights (their SHA-256 checked first).
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<Classifier, JsError> {
        let device = nin::backend::device("flex").map_err(|e| JsError::new(&e.to_string()))?;
        let inner = NativeClassifier::new(Weights::FashionMnistCompact, &device)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Classifier { inner })
    }

    /// The class names, by output index.
    #[wasm_bindgen(js_name = classNames)]
    pub fn class_names(&self) -> Vec<String> {
        self.inner
            .weights()
            .class_names()
            .iter()
            .map(|name| name.to_string())
            .collect()
    }

    /// Classifies a PNG or JPEG file's bytes; `invert` for a dark object on a light background
    /// (a photo), since the network learnt light clothes on black.
    pub fn classify(&self, bytes: &[u8], invert: bool) -> Result<Prediction, JsError> {
        let classification = self
            .inner
            .classify(bytes, invert)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Prediction {
            probabilities: classification.probabilities,
            pixels: classification.pixels,
        })
    }
}

/// What the network made of one image.
#[wasm_bindgen]
pub struct Prediction {
    probabilities: Vec<f32>,
    pixels: Vec<u8>,
}

#[wasm_bindgen]
impl Prediction {
    /// The probability of each class, by index; they sum to 1.
    #[wasm_bindgen(getter)]
    pub fn probabilities(&self) -> Vec<f32> {
        self.probabilities.clone()
    }

    /// The 28×28 grayscale pixels the network saw, row by row.
    #[wasm_bindgen(getter)]
    pub fn pixels(&self) -> Vec<u8> {
        self.pixels.clone()
    }
}
