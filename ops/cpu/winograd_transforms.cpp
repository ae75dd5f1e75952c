// The tile transforms of Winograd's F(m×m, 3×3) (see winograd_transforms.h), written once over
// the matrices of winograd_matrices.h for m = 2 and 4. The tiles' transforms (input, output,
// output gradient) run over an image's tiles as flat loops where the tile geometry allows it:
// rows are split by phase (row mod m), so the α rows of every tile t = ty*TW + tx are arrays read
// at t or t + TW, and an 8×8 plane's tiles fill a vector instead of a few of its lanes. Columns
// are split by phase in registers (split_phases) as a row is read, and merged back (merge_phases)
// as an output row is written. F(2×2, 3×3)'s input transform on rows of at least a vector of
// tiles skips the row arrays: consecutive tile rows share two padded rows, whose horizontal
// transforms stay in registers (input_by_row_pairs; 0.58 against 0.44 ns per input pixel on a
// 16-channel 32×32 image, one thread, Intel m207). The weights' transforms hold one input
// channel per lane.
#include "ops/cpu/winograd_transforms.h"

#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/transpose.h"
#include "ops/cpu/winograd_matrices.h"

#include "core/parallel.h"

#include <algorithm>
#include <bit>
#include <type_traits>

namespace kindling::cpu::winograd {
namespace {

int64_t whole_vectors(int64_t n) { return (n + kStep - 1) / kStep * kStep; }

// u [α²][K][C]. Per output channel k the C filters are transposed to taps [9][C], so that G g Gᵀ
// runs along c with whole vectors and writes each u[ξ][k] row in order.
template <typename T>
void weights(const Conv2dParams& p, const float* w, bool flipped, float* u) {
  constexpr int a = T::alpha;
  const int64_t K = p.K, C = p.C, row = whole_vectors(C);
  parallel_for(0, K, std::max<int64_t>(1, 2048 / C), [&](int64_t k0, int64_t k1) {
    std::vector<float> taps(size_t(9 * row));  // taps[rs*row + c] = w'[k, c, r, s]
    for (int64_t k = k0; k < k1; ++k) {
      if (flipped) {  // w'[k, c, r, s] = w[c, k, 2-r, 2-s]: tap rs is w's tap 8-rs
        transpose(w + k * 9, C, 9, K * 9, taps.data(), row);
        for (int64_t rs = 0; rs < 4; ++rs)
          std::swap_ranges(taps.begin() + rs * row, taps.begin() + (rs + 1) * row,
                           taps.begin() + (8 - rs) * row);
      } else {
        transpose(w + k * C * 9, C, 9, 9, taps.data(), row);
      }
      for (int64_t c = 0; c < C; c += kStep) {
        const int64_t n = std::min(kStep, C - c);
        Vec gg[a][3];  // G g, column by column
        for (int s = 0; s < 3; ++s) {
          const Vec column[3] = {load(taps.data() + s * row + c), load(taps.data() + (3 + s) * row + c),
                                 load(taps.data() + (6 + s) * row + c)};
          Vec out[a];
          apply<T::G>(column, out);
          for (int i = 0; i < a; ++i) gg[i][s] = out[i];
        }
        for (int i = 0; i < a; ++i) {  // (G g) Gᵀ, row i
          Vec out[a];
          apply<T::G>(gg[i], out);
          for (int j = 0; j < a; ++j) store(u + ((i * a + j) * K + k) * C + c, out[j], n);
        }
      }
    }
  });
}

// U [α²][K][C], unpacked, in a workspace.
Workspace weights(const Conv2dParams& p, const Geometry& geo, const float* w, bool flipped) {
  Workspace u(1, geo.positions * p.K * p.C);
  if (geo.m == 2)
    weights<Tile<2>>(p, w, flipped, u.slice(0));
  else
    weights<Tile<4>>(p, w, flipped, u.slice(0));
  return u;
}

// transform_input's scratch: h[j][u % m][u / m][tx], column j of the horizontal transform d B of
// tile tx in padded row u, each (j, phase) array (TH + 1) * TW floats plus a vector of slack.
// Rows of padding are never written and stay zero: they are the same for every channel.
int64_t h_array_floats(const Geometry& geo) { return (geo.tiles_h + 1) * geo.tiles_w + kStep; }

// d B for kStep tiles tx.. of one padded row of an image row `row` (W pixels): out[j] is column j.
template <typename T>
inline void horizontal_row(const Conv2dParams& p, const float* row, int64_t tx, Vec* out) {
  constexpr int m = T::m;
  const int64_t v = m * tx, pw = p.pad_w;
  Vec raw[m], d[m + 2], next[m];  // d[j]: padded column m*tx + j of kStep tiles
  for (int q = 0; q < m; ++q) raw[q] = load_padded(row, v + q * kStep, pw, p.W);
  split_phases<m>(raw, d);
  for (int q = 0; q < m; ++q) raw[q] = load_padded(row, v + m + q * kStep, pw, p.W);
  split_phases<m>(raw, next);
  d[m] = next[0], d[m + 1] = next[1];
  apply<T::BT>(d, out);
}

// d B for the padded rows of one channel, row by row: kStep tiles of a row per vector.
template <typename T>
void horizontal_by_row(const Conv2dParams& p, const Geometry& geo, const float* plane, float* h) {
  constexpr int m = T::m, a = T::alpha;
  const int64_t TW = geo.tiles_w, H = h_array_floats(geo);
  const int64_t first_row = std::max<int64_t>(0, p.pad_h), end_row = std::min(geo.rows, p.H + p.pad_h);
  for (int64_t u = first_row; u < end_row; ++u) {  // padded row u: image row u - pad_h
    float* hu = h + (u % m) * H + (u / m) * TW;    // array (j, phase) at h + (j*m + phase) * H
    for (int64_t tx = 0; tx < TW; tx += kStep) {
      Vec out[a];
      horizontal_row<T>(p, plane + (u - p.pad_h) * p.W, tx, out);
      for (int j = 0; j < a; ++j) store(hu + j * m * H + tx, out[j], std::min(kStep, TW - tx));
    }
  }
}

// F(2×2, 3×3) on rows of at least a vector of tiles: tile row ty reads padded rows 2ty..2ty+3
// and the next one 2ty+2..2ty+5, so the horizontal transforms of the shared pair stay in
// registers and Bᵀ (d B) follows at once, without the scratch arrays' stores and loads.
void input_by_row_pairs(const Conv2dParams& p, const Geometry& geo, const float* plane, float* out,
                        int64_t plane_stride) {
  using T = Tile<2>;
  constexpr int a = T::alpha;
  const int64_t TW = geo.tiles_w;
  auto row = [&](int64_t u, int64_t tx, Vec* h) {  // padded row u, zeros outside the image
    const int64_t image_row = u - p.pad_h;
    if (image_row < 0 || image_row >= p.H) {
      for (int j = 0; j < a; ++j) h[j] = broadcast(0.0f);
      return;
    }
    horizontal_row<T>(p, plane + image_row * p.W, tx, h);
  };
  for (int64_t tx = 0; tx < TW; tx += kStep) {
    const int64_t n = std::min(kStep, TW - tx);
    Vec h[4][a];  // padded rows 2ty .. 2ty+3
    row(0, tx, h[0]), row(1, tx, h[1]);
    for (int64_t ty = 0; ty < geo.tiles_h; ++ty) {
      row(2 * ty + 2, tx, h[2]), row(2 * ty + 3, tx, h[3]);
      float* tiles = out + ty * TW + tx;
      for (int j = 0; j < a; ++j) {
        const Vec column[a] = {h[0][j], h[1][j], h[2][j], h[3][j]};
        Vec v[a];
        apply<T::BT>(column, v);
        for (int i = 0; i < a; ++i) store(tiles + (i * a + j) * plane_stride, v[i], n);
      }
      for (int j = 0; j < a; ++j) h[0][j] = h[2][j], h[1][j] = h[3][j];
    }
  }
}

// Rows narrower than a vector (TW < kStep, TW dividing kStep) are packed kStep / TW to a vector.
// Where W = m*TW the padded rows lie end to end in x, so lane l's tile (row u0 + l/TW, column
// l%TW) starts at column m*l of row u0: the same loads as one row, with the columns that are
// padding (the neighbouring row's pixels) masked to zero, and one store per row.
template <typename T>
void horizontal_packed(const Conv2dParams& p, const Geometry& geo, const float* plane, float* h,
                       const Vec* column_masks) {
  constexpr int m = T::m, a = T::alpha;
  const int64_t TW = geo.tiles_w, H = h_array_floats(geo), pw = p.pad_w, HW = p.H * p.W;
  const int64_t rows = kStep / TW;
  const int64_t first_row = std::max<int64_t>(0, p.pad_h), end_row = std::min(geo.rows, p.H + p.pad_h);
  for (int64_t u0 = first_row; u0 < end_row; u0 += rows) {
    const int64_t v = (u0 - p.pad_h) * p.W - pw;  // padded column 0 of row u0 in the plane
    Vec raw[m], d[m + 2], next[m];
    for (int q = 0; q < m; ++q) raw[q] = load_padded(plane, v + q * kStep, 0, HW);
    split_phases<m>(raw, d);
    for (int q = 0; q < m; ++q) raw[q] = load_padded(plane, v + m + q * kStep, 0, HW);
    split_phases<m>(raw, next);
    d[m] = next[0], d[m + 1] = next[1];
    for (int j = 0; j < a; ++j) d[j] = keep(d[j], column_masks[j]);
    Vec out[a];
    apply<T::BT>(d, out);
    for (int64_t r = 0; r < rows && u0 + r < end_row; ++r) {
      const int64_t u = u0 + r;
      float* hu = h + (u % m) * H + (u / m) * TW - r * TW;  // lane r*TW + tx lands on tile tx
      for (int j = 0; j < a; ++j) store_lanes(hu + j * m * H, out[j], r * TW, (r + 1) * TW);
    }
  }
}

template <typename T>
void input(const Conv2dParams& p, const Geometry& geo, const float* x, float* V, int64_t ld, int64_t plane,
           float* h) {
  constexpr int m = T::m, a = T::alpha;
  const int64_t TW = geo.tiles_w, tiles = geo.per_image, H = h_array_floats(geo);
  const bool packed = p.W == m * TW && TW < kStep && kStep % TW == 0;
  Vec column_masks[a];  // packed rows: lane l keeps column j of its tile unless it is padding
  if (packed)
    for (int j = 0; j < a; ++j) {
      float bits[kStep];
      for (int64_t l = 0; l < kStep; ++l) {
        const int64_t column = m * (l % TW) + j - p.pad_w;
        bits[l] = std::bit_cast<float>(column >= 0 && column < p.W ? ~0u : 0u);
      }
      column_masks[j] = load(bits);
    }
  for (int64_t c = 0; c < p.C; ++c) {
    if constexpr (m == 2) {
      if (!packed) {
        input_by_row_pairs(p, geo, x + c * p.H * p.W, V + c * ld, plane);
        continue;
      }
    }
    if (packed) {
      horizontal_packed<T>(p, geo, x + c * p.H * p.W, h, column_masks);
    } else {
      horizontal_by_row<T>(p, geo, x + c * p.H * p.W, h);
    }
    float* out = V + c * ld;
    for (int64_t t = 0; t < tiles; t += kStep) {  // Bᵀ (d B): tile row ty's rows m*ty + i
      const int64_t n = std::min(kStep, tiles - t);
      for (int j = 0; j < a; ++j) {
        Vec column[a], v[a];
        for (int i = 0; i < a; ++i) column[i] = load(h + (j * m + i % m) * H + (i / m) * TW + t);
        apply<T::BT>(column, v);
        for (int i = 0; i < a; ++i) store(out + (i * a + j) * plane + t, v[i], n);
      }
    }
  }
}

// transform_output's scratch: o[k][a][b][t], output (m*ty+a, m*tx+b) of tile t, each array
// per_image floats plus a vector of slack.
int64_t o_array_floats(const Geometry& geo) { return geo.per_image + kStep; }

// The output rows of kStep / TW consecutive tile rows with the same row phase a, one vector of
// o per column phase (o's tile rows lie end to end): merged, they are those output rows, each Q
// = m*TW floats, side by side; each row's lanes are stored where it lies in y (m rows apart).
template <int m>
void merge_packed(const Conv2dParams& p, const Geometry& geo, const float* o, float* y) {
  const int64_t TW = geo.tiles_w, O = o_array_floats(geo), rows = kStep / TW, Q = p.Q;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t a = 0; a < m; ++a)
      for (int64_t ty0 = 0; ty0 < geo.tiles_h; ty0 += rows) {
        const float* phases = o + (k * m + a) * m * O + ty0 * TW;  // phase b at + b*O
        Vec phase[m], merged[m];
        for (int b = 0; b < m; ++b) phase[b] = load(phases + b * O);
        merge_phases<m>(phase, merged);
        for (int q = 0; q < m; ++q) {  // lanes e0.. of the rows laid end to end
          const int64_t e0 = q * kStep;
          for (int64_t r = e0 / Q; r < rows && r * Q < e0 + kStep; ++r) {
            const int64_t oh = m * (ty0 + r) + a;
            if (oh >= p.P) break;
            const int64_t first = std::max(e0, r * Q) - e0, end = std::min(e0 + kStep, (r + 1) * Q) - e0;
            store_lanes(y + (k * p.P + oh) * Q + e0 - r * Q, merged[q], first, end);
          }
        }
      }
}

template <typename T>
void output(const Conv2dParams& p, const Geometry& geo, const float* M, int64_t ld, int64_t plane, float* y,
            const float* bias, float* o) {
  constexpr int m = T::m, a = T::alpha;
  const int64_t TW = geo.tiles_w, tiles = geo.per_image, O = o_array_floats(geo);
  for (int64_t k = 0; k < p.K; ++k) {  // a flat loop over the tiles
    const Vec b = broadcast(bias ? bias[k] : 0.0f);
    const float* mk = M + k * ld;
    float* ok = o + k * m * m * O;
    for (int64_t t = 0; t < tiles; t += kStep) {
      const int64_t n = std::min(kStep, tiles - t);
      Vec s[m][a];  // Aᵀ M, column by column
      for (int j = 0; j < a; ++j) {
        Vec column[a], out[m];
        for (int i = 0; i < a; ++i) column[i] = load(mk + (i * a + j) * plane + t);
        apply<T::AT>(column, out);
        for (int r = 0; r < m; ++r) s[r][j] = out[r];
      }
      for (int r = 0; r < m; ++r) {  // (Aᵀ M) A, row r
        Vec out[m];
        apply<T::AT>(s[r], out);
        for (int q = 0; q < m; ++q) store(ok + (r * m + q) * O + t, add(out[q], b), n);
      }
    }
  }
  if (p.Q == m * TW && TW < kStep && kStep % TW == 0) return merge_packed<m>(p, geo, o, y);
  for (int64_t k = 0; k < p.K; ++k)  // each output row merges its m column phases
    for (int64_t oh = 0; oh < p.P; ++oh) {
      const float* phases = o + (k * m + oh % m) * m * O + (oh / m) * TW;  // phase q at + q*O
      float* dst = y + (k * p.P + oh) * p.Q;
      for (int64_t tx = 0; tx < TW; tx += kStep) {
        Vec phase[m], merged[m];
        for (int q = 0; q < m; ++q) phase[q] = load(phases + q * O + tx);
        merge_phases<m>(phase, merged);
        for (int q = 0; q < m && m * tx + q * kStep < p.Q; ++q) {
          const int64_t column = m * tx + q * kStep;
          store(dst + column, merged[q], std::min(kStep, p.Q - column));
        }
      }
    }
}

// transform_dy's scratch: q[a][b][t] = dy[m*ty+a][m*tx+b] of one channel, each array per_image
// floats plus a vector of slack; entries past P stay zero, those past Q are loaded as zeros.
// The rows of dy's channel [P, Q] split by column phase into q, kStep / TW rows (Q = m*TW floats
// each, end to end) per vector, each row's lanes stored in its phase's arrays.
template <int m>
void split_packed(const Conv2dParams& p, const Geometry& geo, const float* channel, float* q) {
  const int64_t TW = geo.tiles_w, O = o_array_floats(geo), rows = kStep / TW;
  for (int64_t oh0 = 0; oh0 < p.P; oh0 += rows) {
    const float* first_row = channel + oh0 * p.Q;
    Vec raw[m], phase[m];
    for (int v = 0; v < m; ++v) raw[v] = load_padded(first_row, v * kStep, 0, (p.P - oh0) * p.Q);
    split_phases<m>(raw, phase);
    for (int64_t r = 0; r < rows && oh0 + r < p.P; ++r) {
      const int64_t oh = oh0 + r;
      float* phases = q + (oh % m) * m * O + (oh / m) * TW - r * TW;  // lane r*TW + tx lands on tile tx
      for (int v = 0; v < m; ++v) store_lanes(phases + v * O, phase[v], r * TW, (r + 1) * TW);
    }
  }
}

template <typename T>
void output_gradient(const Conv2dParams& p, const Geometry& geo, const float* dy, float* D, int64_t ld,
                     int64_t plane, float* q) {
  constexpr int m = T::m, a = T::alpha;
  const int64_t TW = geo.tiles_w, tiles = geo.per_image, O = o_array_floats(geo);
  for (int64_t k = 0; k < p.K; ++k) {
    if (p.Q == m * TW && TW < kStep && kStep % TW == 0) {
      split_packed<m>(p, geo, dy + k * p.P * p.Q, q);
    } else {
      for (int64_t oh = 0; oh < p.P; ++oh) {  // split by column phase
        const float* row = dy + (k * p.P + oh) * p.Q;
        float* phases = q + (oh % m) * m * O + (oh / m) * TW;
        for (int64_t tx = 0; tx < TW; tx += kStep) {
          const int64_t n = std::min(kStep, TW - tx);
          Vec raw[m], phase[m];
          for (int v = 0; v < m; ++v) raw[v] = load_padded(row, m * tx + v * kStep, 0, p.Q);
          split_phases<m>(raw, phase);
          for (int v = 0; v < m; ++v) store(phases + v * O + tx, phase[v], n);
        }
      }
    }
    float* out = D + k * ld;
    for (int64_t t = 0; t < tiles; t += kStep) {
      const int64_t n = std::min(kStep, tiles - t);
      Vec x[a][m];  // A dY, column by column
      for (int c = 0; c < m; ++c) {
        Vec column[m], rows[a];
        for (int r = 0; r < m; ++r) column[r] = load(q + (r * m + c) * O + t);
        apply<T::A>(column, rows);
        for (int i = 0; i < a; ++i) x[i][c] = rows[i];
      }
      for (int i = 0; i < a; ++i) {  // (A dY) Aᵀ, row i
        Vec row[a];
        apply<T::A>(x[i], row);
        for (int j = 0; j < a; ++j) store(out + (i * a + j) * plane + t, row[j], n);
      }
    }
  }
}

// Along c with whole vectors into taps [9][C] per k, then transposed into dw[k] [C][9].
template <typename T>
void inverse_weights(const Conv2dParams& p, const float* dU, float* dw) {
  constexpr int a = T::alpha;
  const int64_t K = p.K, C = p.C, row = whole_vectors(C);
  parallel_for(0, K, std::max<int64_t>(1, 2048 / C), [&](int64_t k0, int64_t k1) {
    std::vector<float> taps(size_t(9 * row));  // taps[rs*row + c] = dw[k, c, r, s]
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t c = 0; c < C; c += kStep) {
        const int64_t n = std::min(kStep, C - c);
        Vec z[3][a];  // Gᵀ X for X = dU[k, c] (α×α), column by column
        for (int j = 0; j < a; ++j) {
          Vec column[a], out[3];
          for (int i = 0; i < a; ++i) column[i] = load(dU + ((i * a + j) * K + k) * C + c);
          apply<T::GT>(column, out);
          for (int r = 0; r < 3; ++r) z[r][j] = out[r];
        }
        for (int r = 0; r < 3; ++r) {  // (Gᵀ X) G, row r
          Vec out[3];
          apply<T::GT>(z[r], out);
          for (int s = 0; s < 3; ++s) store(taps.data() + (r * 3 + s) * row + c, out[s], n);
        }
      }
      transpose(taps.data(), 9, C, row, dw + k * C * 9, 9);
    }
  });
}

}  // namespace

Geometry geometry(const Conv2dParams& p, int64_t m) {
  Geometry g;
  g.m = m, g.alpha = m + 2, g.positions = g.alpha * g.alpha;
  g.tiles_h = (p.P + m - 1) / m, g.tiles_w = (p.Q + m - 1) / m;
  g.per_image = g.tiles_h * g.tiles_w;
  g.rows = m * g.tiles_h + 2;
  return g;
}

int64_t plane_floats(int64_t rows, int64_t ld) { return (rows * ld + 1023) / 1024 * 1024 + 16; }

namespace {

// U[ξ] [K, C] for every ξ, packed for gemm_nn (PackedA) or rounded and packed for gemm_bf16_nn.
template <typename Packed>
std::vector<Packed> packed_weights(const Conv2dParams& p, const Geometry& geo, const float* w, bool flipped) {
  const Workspace u = weights(p, geo, w, flipped);
  std::vector<Packed> packed;
  packed.reserve(size_t(geo.positions));
  for (int64_t xi = 0; xi < geo.positions; ++xi) {
    const float* u_xi = u.slice(0) + xi * p.K * p.C;
    if constexpr (std::is_same_v<Packed, PackedA>)
      packed.emplace_back(u_xi, p.K, p.C, p.C, 1);
    else
      packed.emplace_back(StridedMatrix{u_xi, p.C, 1}, p.K, p.C);
  }
  return packed;
}

}  // namespace

std::vector<PackedA> transform_weights(const Conv2dParams& p, const Geometry& geo, const float* w,
                                       bool flipped) {
  return packed_weights<PackedA>(p, geo, w, flipped);
}

std::vector<PackedBf16> transform_weights_bf16(const Conv2dParams& p, const Geometry& geo, const float* w,
                                               bool flipped) {
  return packed_weights<PackedBf16>(p, geo, w, flipped);
}

int64_t input_scratch_floats(const Geometry& geo) { return geo.alpha * geo.m * h_array_floats(geo); }

void transform_input(const Conv2dParams& p, const Geometry& geo, const float* x, float* V, int64_t ld,
                     int64_t plane, float* scratch) {
  if (geo.m == 2) return input<Tile<2>>(p, geo, x, V, ld, plane, scratch);
  input<Tile<4>>(p, geo, x, V, ld, plane, scratch);
}

int64_t output_scratch_floats(const Conv2dParams& p, const Geometry& geo) {
  return p.K * geo.m * geo.m * o_array_floats(geo);
}

void transform_output(const Conv2dParams& p, const Geometry& geo, const float* M, int64_t ld, int64_t plane,
                      float* y, const float* bias, float* scratch) {
  if (geo.m == 2) return output<Tile<2>>(p, geo, M, ld, plane, y, bias, scratch);
  output<Tile<4>>(p, geo, M, ld, plane, y, bias, scratch);
}

int64_t dy_scratch_floats(const Geometry& geo) { return geo.m * geo.m * o_array_floats(geo); }

void transform_dy(const Conv2dParams& p, const Geometry& geo, const float* dy, float* D, int64_t ld,
                  int64_t plane, float* scratch) {
  if (geo.m == 2) return output_gradient<Tile<2>>(p, geo, dy, D, ld, plane, scratch);
  output_gradient<Tile<4>>(p, geo, dy, D, ld, plane, scratch);
}

void weight_grad_from_transformed(const Conv2dParams& p, const Geometry& geo, const float* dU, float* dw) {
  if (geo.m == 2) return inverse_weights<Tile<2>>(p, dU, dw);
  inverse_weights<Tile<4>>(p, dU, dw);
}

}  // namespace kindling::cpu::winograd
