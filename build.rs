//! Builds the small C file of the direct JPEG path (src/media/jpeg/shim.c) against the
//! system's libjpeg (Debian's libjpeg62-turbo, the one libvips links).

fn main() {
    println!("cargo:rerun-if-changed=src/media/jpeg/shim.c");
    cc::Build::new()
        .file("src/media/jpeg/shim.c")
        .warnings(true)
        .extra_warnings(true)
        .opt_level(2)
        .compile("filegate_jpeg");
    println!("cargo:rustc-link-lib=jpeg");
}
