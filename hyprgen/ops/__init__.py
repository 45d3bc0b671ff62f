"""The stages of one HYPR chunk as tensor functions, each beside its plain-PyTorch reference.

    s_stage.py   s_stage_ref   | s_stage_triton (the neuron's generated <neuron>_s_stage_kernel)
    p_stage.py   p_stage_ref   | p_stage_torch (the generated `p_stage`) | p_stage_triton (<neuron>_p_stage_kernel)
    merge.py     merge_ref     | merge_triton (merge_kernel, defined there)
    jacobians.py dense local Jacobians: from the generated code (densify) or by autograd (the oracle)

Tensors in, tensors out: nothing here knows networks, layers or learners (runtime/ builds on this).
dispatch.py picks the compiled (CUDA) or interpreted (CPU) form of a kernel; libdevice.py is the
math library the generated kernels call; aot.py and compile_keys.py compile without a GPU.
docs/kernels.md describes the Triton target.
"""
