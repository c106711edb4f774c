// The page: a drawing canvas, a drop zone and a file input feed PNG or JPEG bytes to the
// classifier (nin_web.js, written by wasm-bindgen). State for tests and styles:
// <body data-state="loading | ready | busy | error">; each result is an <li data-class
// data-probability> in order of probability, and #results holds all ten probabilities in
// data-probabilities.
import init, { Classifier } from "./nin_web.js";

const body = document.body;
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const preview = document.getElementById("preview");
const results = document.getElementById("results");
const time = document.getElementById("time");
const error = document.getElementById("error");
const invert = document.getElementById("invert");
const drop = document.getElementById("drop");

// Milliseconds after navigation started: when the classifier was ready, and when the first
// classification was shown; and how many classifications and errors were shown so far.
window.ninTimings = { ready: null, firstClassification: null };
window.ninCounts = { classifications: 0, errors: 0 };

let classifier = null;
let names = [];

function setState(state) {
  body.dataset.state = state;
}

function showError(message) {
  error.textContent = message;
  window.ninCounts.errors += 1;
  setState("error");
}

function clearCanvas() {
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
}

function showPixels(pixels) {
  const picture = preview.getContext("2d").createImageData(28, 28);
  pixels.forEach((value, index) => {
    picture.data.set([value, value, value, 255], index * 4);
  });
  preview.getContext("2d").putImageData(picture, 0, 0);
}

function showProbabilities(probabilities) {
  const ranked = Array.from(probabilities, (p, index) => ({ name: names[index], p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3);
  results.dataset.probabilities = JSON.stringify(Array.from(probabilities));
  results.replaceChildren(
    ...ranked.map(({ name, p }) => {
      const item = document.createElement("li");
      item.dataset.class = name;
      item.dataset.probability = p.toFixed(4);
      const label = document.createElement("div");
      label.textContent = `${name} ${(100 * p).toFixed(1)} %`;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.max(1, 100 * p)}%`;
      item.append(label, bar);
      return item;
    }),
  );
}

// Classifies an image file's bytes and shows the result, or the reason it could not.
function classify(bytes, invertColours) {
  if (!classifier) {
    return;
  }
  setState("busy");
  const start = performance.now();
  try {
    const prediction = classifier.classify(bytes, invertColours);
    const milliseconds = performance.now() - start;
    showPixels(prediction.pixels);
    showProbabilities(prediction.probabilities);
    prediction.free();
    time.textContent = `classified in ${milliseconds.toFixed(1)} ms`;
    time.dataset.milliseconds = milliseconds.toString();
    error.textContent = "";
    window.ninTimings.firstClassification ??= performance.now();
    window.ninCounts.classifications += 1;
    setState("ready");
  } catch (reason) {
    showError(`That could not be classified: ${reason.message ?? reason}`);
  }
}

async function classifyFile(file) {
  classify(new Uint8Array(await file.arrayBuffer()), invert.checked);
}

// Drawing: a thick white brush on black, as Fashion-MNIST's light clothes on black.
let drawing = false;
function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * canvas.width) / box.width,
    ((event.clientY - box.top) * canvas.height) / box.height,
  ];
}
canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  context.beginPath();
  context.moveTo(...point(event));
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) {
    return;
  }
  context.lineTo(...point(event));
  context.strokeStyle = "#fff";
  context.lineWidth = 22;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.stroke();
});
function endStroke() {
  if (!drawing) {
    return;
  }
  drawing = false;
  canvas.toBlob(async (blob) => classify(new Uint8Array(await blob.arrayBuffer()), false), "image/png");
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
document.getElementById("clear").addEventListener("click", () => {
  clearCanvas();
  results.replaceChildren();
  time.textContent = "";
});

// Dropping or choosing a file.
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) {
    classifyFile(file);
  }
});
document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) {
    classifyFile(file);
  }
});

clearCanvas();
try {
  await init();
  classifier = new Classifier();
  names = classifier.classNames();
  window.ninTimings.ready = performance.now();
  setState("ready");
} catch (reason) {
  showError(`The classifier could not be loaded: ${reason.message ?? reason}`);
}
