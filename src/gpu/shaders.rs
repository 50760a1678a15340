//! WGSL sources. WGSL has no includes, so each pipeline's module is the
//! concatenation of the files it needs, in order. Each file in `shaders/` has
//! a CPU twin named in its header comment (`keystream.wgsl` and
//! `src/keystream/`, `kernel.wgsl` and `src/kernel/`, `compact.wgsl` and
//! the compact definitions in `src/engine/contract.rs`; docs/DESIGN.md
//! section 9).

/// One WGSL file, with the path that errors name.
#[derive(Debug, Clone, Copy)]
pub struct ShaderFile {
    pub path: &'static str,
    pub source: &'static str,
}

/// The bindings and `Params` layout every pipeline shares.
pub const BINDINGS: ShaderFile = ShaderFile {
    path: "shaders/bindings.wgsl",
    source: include_str!("../../shaders/bindings.wgsl"),
};

/// The ChaCha20 keystream (twin of `src/keystream/`).
pub const KEYSTREAM: ShaderFile = ShaderFile {
    path: "shaders/keystream.wgsl",
    source: include_str!("../../shaders/keystream.wgsl"),
};

/// GF(2^8) multiply by a constant, shift-xor (twin of `src/kernel/portable.rs`).
pub const KERNEL: ShaderFile = ShaderFile {
    path: "shaders/kernel.wgsl",
    source: include_str!("../../shaders/kernel.wgsl"),
};

/// The coefficient pass of a split.
pub const SPLIT: ShaderFile = ShaderFile {
    path: "shaders/split.wgsl",
    source: include_str!("../../shaders/split.wgsl"),
};

/// The matrix pass of split, combine and repair.
pub const APPLY: ShaderFile = ShaderFile {
    path: "shaders/apply.wgsl",
    source: include_str!("../../shaders/apply.wgsl"),
};

/// The compact scheme's cipher pass (keystream 0 XORed into the stripes).
pub const COMPACT: ShaderFile = ShaderFile {
    path: "shaders/compact.wgsl",
    source: include_str!("../../shaders/compact.wgsl"),
};

/// A compute pipeline's module: its entry file and the files it needs first.
#[derive(Debug, Clone, Copy)]
pub struct PipelineSource {
    /// The file that holds the entry point; errors name it.
    pub entry_file: ShaderFile,
    pub entry_point: &'static str,
    /// Files concatenated before `entry_file`.
    pub needs: &'static [ShaderFile],
}

impl PipelineSource {
    /// The whole module text.
    pub fn source(&self) -> String {
        let mut text = String::new();
        for file in self.needs.iter().chain(std::iter::once(&self.entry_file)) {
            text.push_str("// ---- ");
            text.push_str(file.path);
            text.push_str(" ----\n");
            text.push_str(file.source);
            text.push('\n');
        }
        text
    }

    /// The files in the module, for error messages: "shaders/split.wgsl
    /// (with shaders/bindings.wgsl, shaders/keystream.wgsl)".
    pub fn name(&self) -> String {
        let needs: Vec<&str> = self.needs.iter().map(|f| f.path).collect();
        format!("{} (with {})", self.entry_file.path, needs.join(", "))
    }
}

/// Split, part 1: coefficient streams from the key.
pub const SPLIT_PIPELINE: PipelineSource = PipelineSource {
    entry_file: SPLIT,
    entry_point: "fill_coefficients",
    needs: &[BINDINGS, KEYSTREAM],
};

/// Matrix times streams: split part 2, combine, repair.
pub const APPLY_PIPELINE: PipelineSource = PipelineSource {
    entry_file: APPLY,
    entry_point: "apply",
    needs: &[BINDINGS, KERNEL],
};

/// Compact split, part 1: the plaintext stripes in the input rows encrypted.
pub const CIPHER_INPUTS_PIPELINE: PipelineSource = PipelineSource {
    entry_file: COMPACT,
    entry_point: "cipher_inputs",
    needs: &[BINDINGS, KEYSTREAM],
};

/// Compact combine, part 2: the ciphertext stripes in the output rows
/// decrypted.
pub const CIPHER_OUTPUTS_PIPELINE: PipelineSource = PipelineSource {
    entry_file: COMPACT,
    entry_point: "cipher_outputs",
    needs: &[BINDINGS, KEYSTREAM],
};

/// Every file, for validation tests.
pub const ALL_FILES: [ShaderFile; 6] = [BINDINGS, KEYSTREAM, KERNEL, SPLIT, APPLY, COMPACT];

/// Every pipeline, for validation tests.
pub const ALL_PIPELINES: [PipelineSource; 4] = [
    SPLIT_PIPELINE,
    APPLY_PIPELINE,
    CIPHER_INPUTS_PIPELINE,
    CIPHER_OUTPUTS_PIPELINE,
];
