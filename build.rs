//! Compiles the public .proto with a vendored protoc, so a fresh checkout
//! builds with nothing but cargo installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; the variable is only read
    // by the code generator below.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("record_index_descriptor.bin"))
        .compile_protos(&["proto/recordindex/v1/record_index.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
