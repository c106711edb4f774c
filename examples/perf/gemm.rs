//! `perf --gemm`: the matrix products under the convolutions, on each library compiled in.

use super::*;

/// `perf --gemm`: each matrix product the kernel runs, one per thread and threaded.
pub(super) fn gemm_table(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    nin::ops::retain_freed_memory();
    let layers = preset_layers(args)?;
    let peak = peak_line();
    // The libraries compared: gemm, and private-gemm-x86 and matrixmultiply when their features
    // are on (matrixmultiply's "threaded" column uses its own global setting,
    // MATMUL_NUM_THREADS).
    #[allow(unused_mut)]
    let mut libraries: Vec<(&str, kernels::Multiply)> = vec![("gemm", nin::ops::gemm::matmul_gemm)];
    #[cfg(all(feature = "private-gemm-x86", target_arch = "x86_64"))]
    libraries.push(("private-gemm-x86", nin::ops::gemm::matmul_private_gemm_x86));
    #[cfg(feature = "matrixmultiply")]
    libraries.push(("matrixmultiply", nin::ops::gemm::matmul_matrixmultiply));
    println!(
        "gemm 0.19 is what flex and this crate's kernel use; GFLOP/s, median of {} runs: \
         \"one per thread\" runs a product on every thread at once (the kernel's split, summed), \
         \"threaded\" one product over all threads",
        args.steps
    );
    println!();
    let mut header = String::from("| preset | product | m×k · k×n | images per product |");
    let mut rule = String::from("|---|---|---|---:|");
    for (library, _) in &libraries {
        header.push_str(&format!(" {library} one per thread | {library} threaded |"));
        rule.push_str("---:|---:|");
    }
    println!("{header} best % of peak |");
    println!("{rule}---:|");
    let mut seen = std::collections::HashSet::new();
    for (preset, name, g) in layers {
        for product in kernels::layer_products(&name, &g, rayon::current_num_threads()) {
            if !seen.insert((product.m, product.k, product.n, product.rhs_transposed)) {
                continue;
            }
            let mut row = format!(
                "| {} | {} | {}×{} · {}×{}{} | {} |",
                preset.name(),
                product.name,
                product.m,
                product.k,
                product.k,
                product.n,
                if product.rhs_transposed { " (ᵀ)" } else { "" },
                product.images,
            );
            let mut best = 0f64;
            for &(_, multiply) in &libraries {
                let (split, threaded) = kernels::time_product(&product, multiply, args.steps);
                row.push_str(&format!(" {split:.1} | {threaded:.1} |"));
                best = best.max(split).max(threaded);
            }
            println!("{row} {:.0} % |", 100.0 * best / peak);
        }
    }
    Ok(())
}
