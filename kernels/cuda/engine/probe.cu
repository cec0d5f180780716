/* kernels/cuda/cuda_probe.h: what benches and tests may ask of a backend. */
#include "kernels/cuda/engine/engine.cuh"
#include "kernels/cuda/launch.cuh"

extern "C" {
#include "kernels/cuda/cuda_probe.h"
}

extern "C" size_t sym_cuda_backend_weight_bytes(const sym_backend *b) {
    return ((const cuda_backend *)b)->weight_bytes;
}

extern "C" cudaStream_t sym_cuda_backend_stream(const sym_backend *b) { return ((const cuda_backend *)b)->s; }

extern "C" int sym_cuda_backend_replay(sym_backend *b, int B, sym_err *e) {
    cuda_backend *c = (cuda_backend *)b;
    if (B < 1 || B > b->max_batch) return sym_fail(e, "replay of %d rows (this backend takes 1..%d)", B, b->max_batch);
    cudaGraphExec_t x = c->graphs[sym_eng_bucket_index(c, B)][0];
    if (!x) return sym_fail(e, "no step of %d rows has run: no graph to replay", B);
    CUDA_CHECK(cudaGraphLaunch(x, c->s));
    return 0;
}
