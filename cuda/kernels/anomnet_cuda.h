/*
 * anomnet_cuda.h: the C interface of anomnet's CUDA kernels (libanomnet_cuda.a),
 * called from Go through cgo by package github.com/org/anomnet/cuda.
 *
 * It includes no CUDA header, so that the Go package compiles and vets on a
 * machine without the toolkit; only linking needs the CUDA libraries.
 *
 * Conventions:
 *   - Every entry point returns an int status: 0 on success, else a CUDA
 *     error code (cudaError_t) or one of the ANC_ERR_* codes below. After a
 *     failure anc_last_error(ctx) holds "<what failed>: <message>", the
 *     message being cudaGetErrorString's text for CUDA errors.
 *   - Device memory is addressed by anc_dptr, a plain integer (like the
 *     driver API's CUdeviceptr), so that Go never holds a device address in a
 *     pointer type. Element addresses may have any 4-byte alignment.
 *   - Ops are queued on the context's stream and return without waiting,
 *     except the transfers to and from the host, anc_sum, anc_dot and
 *     anc_sync, which wait for the stream.
 *   - A context is not safe for concurrent use: the caller serialises calls
 *     (the Go Device holds a mutex).
 *   - Feature maps are NCHW float32; int32 for indices and labels.
 */
#ifndef ANOMNET_CUDA_H
#define ANOMNET_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

/* anc_dptr is a device address. */
typedef unsigned long long anc_dptr;

/* anc_ctx is one device's state: ordinal, stream, scratch memory, the fault
 * word the kernels report bad indices in, and the last error message. */
typedef struct anc_ctx anc_ctx;

/* Status codes of anomnet's own checks, beyond CUDA's (which are < 10000). */
enum {
	ANC_ERR_INDEX = 10001,   /* a kernel saw an index out of range */
	ANC_ERR_ARG = 10002,     /* bad arguments (a size too large for a grid) */
	ANC_ERR_NOMEM = 10003    /* host allocation failed */
};

/* Fault codes kernels store in the context's fault word; anc_sync reports
 * them as ANC_ERR_INDEX with a message naming the op. */
enum {
	ANC_FAULT_GATHER = 1,
	ANC_FAULT_SCATTER = 2
};

/* anc_error_string returns the text of a status, for failures that happen
 * before a context exists (anc_device_count, anc_create). */
const char *anc_error_string(int status);

/* anc_device_count sets *n to the number of CUDA devices. */
int anc_device_count(int *n);

/* anc_create makes a context for device ordinal on a stream of its own. On
 * failure *out is NULL. */
int anc_create(int ordinal, anc_ctx **out);
/* anc_destroy waits for the stream and releases the context's own memory,
 * stream and state; the caller frees its buffers first. NULL is a no-op. */
void anc_destroy(anc_ctx *c);
/* anc_last_error returns the message of the context's last failure. */
const char *anc_last_error(anc_ctx *c);
/* anc_device_name writes the device's name (NUL-terminated) to buf. */
int anc_device_name(anc_ctx *c, char *buf, int len);

/* anc_fast_div sets q[i] = n[i] / d (0 <= n[i] < 2^31, d >= 1) on the host
 * through the FastDiv the kernels divide with (common.cuh), so that its
 * multiplier and shift can be checked without a GPU. */
void anc_fast_div(int d, const int *n, int *q, long long count);
/* anc_tf32 sets y[i] to x[i] rounded to TF32 as the tensor-core products
 * round their inputs (mma.cuh's tf32, on the host), for tests. */
void anc_tf32(const float *x, float *y, long long count);

/* Memory. */
int anc_malloc(anc_ctx *c, anc_dptr *p, long long bytes);
int anc_free(anc_ctx *c, anc_dptr p);
int anc_memset0(anc_ctx *c, anc_dptr p, long long bytes);
int anc_to_device(anc_ctx *c, anc_dptr dst, const void *src, long long bytes);
int anc_to_host(anc_ctx *c, void *dst, anc_dptr src, long long bytes);
int anc_copy(anc_ctx *c, anc_dptr dst, anc_dptr src, long long bytes);
/* anc_copy_channels copies, for each of n images, ch planes of hw floats
 * from src (sc planes per image, from plane so) to dst (dc planes per image,
 * from plane dof): Concat, Split and AppendCoords. */
int anc_copy_channels(anc_ctx *c, anc_dptr dst, int dc, int dof, anc_dptr src, int sc, int so, int ch, int n, long long hw);
/* anc_sync waits for the stream and reports the first error, including a
 * fault a kernel recorded since the last anc_sync. */
int anc_sync(anc_ctx *c);

/* Elementwise ops and reductions over n float32 elements. */
int anc_fill(anc_ctx *c, anc_dptr x, long long n, float v);
int anc_add(anc_ctx *c, anc_dptr dst, anc_dptr a, anc_dptr b, long long n);
int anc_axpy(anc_ctx *c, float alpha, anc_dptr x, anc_dptr y, long long n);
int anc_scale(anc_ctx *c, float alpha, anc_dptr x, long long n);
int anc_relu(anc_ctx *c, anc_dptr y, anc_dptr x, long long n);
int anc_relu_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, anc_dptr y, long long n);
int anc_sum(anc_ctx *c, anc_dptr x, long long n, double *out);
int anc_dot(anc_ctx *c, anc_dptr x, anc_dptr y, long long n, double *out);
/* anc_adam: step_size = lr/(1-beta1^t) and sqrt_bc2 = sqrt(1-beta2^t), both
 * computed by the caller in float64 and rounded to float32. */
int anc_adam(anc_ctx *c, anc_dptr param, anc_dptr grad, anc_dptr m, anc_dptr v, long long n,
	float step_size, float sqrt_bc2, float beta1, float beta2, float eps, float weight_decay);

/* anc_gemm sets c = alpha*op(a)*op(b) + beta*c, row-major; op(a) is m x k,
 * a has lda columns as stored (k, or m if trans_a), b has ldb; c is m x n
 * with n columns. With beta == 0, c is not read. */
int anc_gemm(anc_ctx *c, int trans_a, int trans_b, int m, int n, int k, float alpha,
	anc_dptr a, int lda, anc_dptr b, int ldb, float beta, anc_dptr cc);

/* anc_conv_geom is a checked convolution geometry: input n x c x h x w,
 * filters o x c x kh x kw, output n x o x oh x ow. */
typedef struct {
	int n, c, h, w;
	int o, kh, kw;
	int oh, ow;
	int sh, sw, ph, pw;
} anc_conv_geom;

/* anc_conv2d: y = conv(x, w) + bias (bias 0: none), plus y's old contents
 * if accumulate, then max(., 0) if relu. */
int anc_conv2d(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr w, anc_dptr bias, anc_conv_geom g, int accumulate, int relu);
int anc_conv2d_backward_data(anc_ctx *c, anc_dptr dx, anc_dptr dy, anc_dptr w, anc_conv_geom g);
/* anc_conv2d_backward_filter: dw, and dbias unless 0. */
int anc_conv2d_backward_filter(anc_ctx *c, anc_dptr dw, anc_dptr dbias, anc_dptr x, anc_dptr dy, anc_conv_geom g);

/* Map ops over nc planes of h x w (input) and oh x ow (output). */
int anc_zero_pad2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int top, int left);
int anc_max_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int k, int s, int p);
int anc_avg_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int k, int s, int p);
int anc_avg_pool2d_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow, int k, int s, int p);
int anc_adaptive_avg_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow);
int anc_adaptive_avg_pool2d_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow);
int anc_resize_bilinear(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow);
int anc_resize_bilinear_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow);
/* anc_gaussian_blur: taps holds the 2r+1 float32 weights (host memory). */
int anc_gaussian_blur(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, const float *taps, int r);
/* anc_coord_channels writes CoordConv's two coordinate planes after the ch
 * planes of each of the n images of y (ch+2 planes of h x w each). */
int anc_coord_channels(anc_ctx *c, anc_dptr y, int n, int ch, int h, int w);
/* anc_transpose: for each of n matrices of rows x cols in src, writes its
 * transpose (cols x rows) to dst: ChannelsLast and ChannelsFirst. */
int anc_transpose(anc_ctx *c, anc_dptr dst, anc_dptr src, int n, int rows, int cols);

/* Row ops on matrices of rows of d float32. */
/* anc_nearest: for each of the n rows of x, the nearest of the k rows of
 * cent; idx (int32) and dist may each be 0 (not wanted). */
int anc_nearest(anc_ctx *c, anc_dptr idx, anc_dptr dist, anc_dptr x, anc_dptr cent, long long n, int k, int d);
int anc_gather_rows(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr idx, long long m, int d, long long rows);
int anc_scatter_add_rows(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr idx, long long m, int d, long long rows);
int anc_normalize_rows(anc_ctx *c, anc_dptr z, anc_dptr norms, anc_dptr x, long long m, int d, float eps);
int anc_normalize_rows_backward(anc_ctx *c, anc_dptr dx, anc_dptr dz, anc_dptr z, anc_dptr norms, long long m, int d, float eps);
int anc_cosine_similarity(anc_ctx *c, anc_dptr s, anc_dptr x, int m, int d, float eps);
/* anc_negative_hinge: loss (m) and, unless 0, grad (m x d) of the
 * contrastive negative term over rows z with int32 labels y. */
int anc_negative_hinge(anc_ctx *c, anc_dptr loss, anc_dptr grad, anc_dptr z, anc_dptr y, int m, int d, float margin);

#ifdef __cplusplus
}
#endif

#endif /* ANOMNET_CUDA_H */
