/*
 * synth_draw.c: the scenes of the synthetic world and their rasterisation.
 *
 * Each object kind is an inside test in the object's own frame (u right, v up, the shape
 * within the unit circle), built from disks, boxes and straight edges. A pixel takes 3x3
 * samples; each sample maps through the object's rotation and radius into that frame, so one
 * test serves every size, position and angle, and edges come out antialiased.
 *
 * Key design choice: placement keeps the objects' bounding circles disjoint (shrinking an
 * object that finds no room), so no object hides another and the object list is exact.
 */
#include <math.h>
#include <string.h>

#include "util/common.h" // defines: die
#include "util/rng.h"    // defines: Rng, rng_seed, rng_uniform, rng_below, rng_normal, splitmix64
#include "synth/synth.h"

const char *const synth_split_names[SYNTH_N_SPLITS] = {"train", "val", "test"};

const char *const synth_kind_names[SYNTH_N_KINDS] = {
    "ball", "star", "heart", "moon", "cross", "ring", "key",  "leaf", "house",   "tree",
    "cup",  "car",  "fish",  "bird", "flower", "hat", "boat", "umbrella", "chair"};

const char *const synth_colour_names[SYNTH_N_COLOURS] = {"red",    "yellow", "green", "blue",
                                                         "purple", "pink",   "black", "white"};
static const uint8_t COLOUR_RGB[SYNTH_N_COLOURS][3] = {
    {215, 40, 40}, {240, 210, 30}, {40, 170, 60},  {40, 80, 220},
    {140, 50, 190}, {250, 130, 190}, {25, 25, 25}, {245, 245, 245}};

// ---------------------------------------------------------------------------------------------
// Shape primitives, in the object's frame

static int disk(float u, float v, float cu, float cv, float r) {
    return (u - cu) * (u - cu) + (v - cv) * (v - cv) < r * r;
}
static int box(float u, float v, float u0, float u1, float v0, float v1) {
    return u >= u0 && u <= u1 && v >= v0 && v <= v1;
}
static int ellipse(float u, float v, float cu, float cv, float a, float b) {
    float x = (u - cu) / a, y = (v - cv) / b;
    return x * x + y * y < 1.0f;
}
/* Inside the five-pointed star of outer radius ro and inner radius ri, one point up. */
static int star(float u, float v, float ro, float ri) {
    const float sector = 2.0f * (float)M_PI / 5.0f;
    float rho = sqrtf(u * u + v * v);
    if (rho >= ro) return 0;
    float a = fmodf(atan2f(v, u) - (float)M_PI / 2.0f + 4.0f * (float)M_PI, sector);
    if (a > sector / 2) a = sector - a; // fold onto the half-sector [0, 36 deg]
    float px = rho * cosf(a), py = rho * sinf(a);
    // the edge from the tip (ro, 0) to the inner corner (ri cos 36, ri sin 36)
    float ex = ri * cosf(sector / 2) - ro, ey = ri * sinf(sector / 2);
    // the origin lies on the positive side of the edge (cross product ey*ro > 0); the point must too
    return ex * py - ey * (px - ro) > 0;
}

int synth_shape_at(int kind, float u, float v) {
    if (u * u + v * v >= 1.0f) return 0; // every shape lies within the unit circle
    switch (kind) {
    case 0: { // ball, with a curved seam
        if (!disk(u, v, 0, 0, 0.9f)) return 0;
        return fabsf(v - 0.3f * sinf(2.5f * u)) < 0.09f ? 2 : 1;
    }
    case 1: return star(u, v, 0.95f, 0.4f);
    case 2: { // heart: the implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to fit
        float x = u * 1.4f, y = v * 1.4f + 0.2f;
        float q = x * x + y * y - 1.0f;
        return q * q * q - x * x * y * y * y <= 0.0f;
    }
    case 3: return disk(u, v, 0, 0, 0.85f) && !disk(u, v, 0.38f, 0.18f, 0.68f); // moon
    case 4: return box(u, v, -0.2f, 0.2f, -0.9f, 0.9f) || box(u, v, -0.65f, 0.65f, 0.1f, 0.5f);
    case 5: { // ring with a stone
        if (disk(u, v, 0, 0.72f, 0.17f)) return 2;
        float r2 = u * u + v * v;
        return r2 < 0.8f * 0.8f && r2 > 0.5f * 0.5f;
    }
    case 6: { // key
        if (disk(u, v, -0.55f, 0, 0.35f)) return !disk(u, v, -0.55f, 0, 0.15f);
        return box(u, v, -0.22f, 0.9f, -0.09f, 0.09f) || box(u, v, 0.55f, 0.65f, -0.32f, 0) ||
               box(u, v, 0.75f, 0.88f, -0.28f, 0);
    }
    case 7: { // leaf: a lens along a tilted axis, with its midrib and stem
        const float c = 0.825f, s = 0.565f; // rotation by about 0.6 rad
        float x = c * u + s * v, y = -s * u + c * v;
        if (disk(x, y, 0.5f, 0, 1.0f) && disk(x, y, -0.5f, 0, 1.0f)) return fabsf(x) < 0.05f ? 2 : 1;
        return box(x, y, -0.06f, 0.06f, -0.97f, -0.8f);
    }
    case 8: { // house: walls, roof, a door and a window
        if (box(u, v, -0.6f, 0.6f, -0.75f, 0.1f))
            return box(u, v, -0.14f, 0.14f, -0.75f, -0.3f) || box(u, v, 0.25f, 0.45f, -0.2f, 0) ? 2 : 1;
        return v >= 0.1f && v <= 0.8f && fabsf(u) < 0.75f * (0.8f - v) / 0.7f;
    }
    case 9: // tree: canopy and trunk
        if (disk(u, v, 0, 0.25f, 0.6f)) return 1;
        return box(u, v, -0.12f, 0.12f, -0.9f, -0.2f) ? 2 : 0;
    case 10: { // cup: a tapered body with a rim band and a handle
        if (v >= -0.65f && v <= 0.55f && fabsf(u) < 0.42f + 0.1f * (v + 0.65f) / 1.2f)
            return v > 0.42f ? 2 : 1;
        float r2 = (u - 0.55f) * (u - 0.55f) + v * v;
        return u > 0.45f && r2 < 0.3f * 0.3f && r2 > 0.16f * 0.16f;
    }
    case 11: { // car: body, cabin with windows, wheels
        if (disk(u, v, -0.5f, -0.35f, 0.2f) || disk(u, v, 0.5f, -0.35f, 0.2f)) return 2;
        if (box(u, v, -0.9f, 0.9f, -0.3f, 0.1f)) return 1;
        if (v >= 0.1f && v <= 0.45f && fabsf(u) < 0.5f - (v - 0.1f) * 0.6f)
            return v > 0.15f && v < 0.38f && fabsf(u) > 0.05f && fabsf(u) < 0.4f - (v - 0.1f) * 0.6f ? 2 : 1;
        return 0;
    }
    case 12: // fish: body, tail, eye
        if (disk(u, v, 0.45f, 0.1f, 0.07f)) return 2;
        if (ellipse(u, v, 0.15f, 0, 0.6f, 0.38f)) return 1;
        return u >= -0.85f && u <= -0.35f && fabsf(v) < (-0.35f - u) * 0.75f;
    case 13: { // bird: body, head, beak, tail, wing, eye
        if (disk(u, v, 0.48f, 0.27f, 0.05f) || ellipse(u, v, -0.15f, 0, 0.3f, 0.13f)) return 2;
        if (ellipse(u, v, -0.1f, -0.1f, 0.55f, 0.3f) || disk(u, v, 0.42f, 0.22f, 0.2f)) return 1;
        if (u >= 0.58f && u <= 0.88f && fabsf(v - 0.21f) < 0.07f * (0.88f - u) / 0.3f) return 1;
        if (u >= -0.88f && u <= -0.55f) return fabsf(v + 0.1f) < 0.05f + 0.25f * (-0.55f - u) / 0.33f;
        return 0;
    }
    case 14: { // flower: five petals around a centre
        if (disk(u, v, 0, 0, 0.26f)) return 2;
        for (int k = 0; k < 5; k++) {
            float a = (float)M_PI / 2 + k * 2.0f * (float)M_PI / 5;
            if (disk(u, v, 0.52f * cosf(a), 0.52f * sinf(a), 0.33f)) return 1;
        }
        return 0;
    }
    case 15: // hat: brim, crown, band
        if (box(u, v, -0.5f, 0.5f, -0.28f, 0.45f)) return v < -0.12f ? 2 : 1;
        return box(u, v, -0.88f, 0.88f, -0.42f, -0.28f);
    case 16: // boat: hull, mast, sail
        if (v >= -0.6f && v <= -0.25f && fabsf(u) < 0.85f - (-0.25f - v)) return 1;
        if (box(u, v, -0.04f, 0.04f, -0.25f, 0.85f)) return 1;
        return u >= 0.08f && v >= -0.15f && v <= 0.8f && u - 0.08f < 0.52f * (0.8f - v) / 0.95f ? 2 : 0;
    case 17: { // umbrella: canopy with ribs, shaft, hook
        if (v >= 0 && disk(u, v, 0, 0, 0.88f))
            return fabsf(u) < 0.035f || fabsf(fabsf(u) - 0.45f) < 0.035f ? 2 : 1;
        if (box(u, v, -0.05f, 0.05f, -0.75f, 0)) return 1;
        float r2 = (u + 0.15f) * (u + 0.15f) + (v + 0.75f) * (v + 0.75f);
        return v < -0.75f && r2 < 0.2f * 0.2f && r2 > 0.1f * 0.1f;
    }
    case 18: // chair, side view: back post, seat, front leg (thick enough for small sizes)
        return box(u, v, -0.55f, -0.3f, -0.75f, 0.75f) || box(u, v, -0.55f, 0.55f, -0.22f, 0.03f) ||
               box(u, v, 0.3f, 0.55f, -0.75f, -0.22f);
    default: die("synth_shape_at: no object kind %d", kind);
    }
}

// ---------------------------------------------------------------------------------------------
// Scenes

uint64_t synth_stream_seed(uint64_t seed, SynthSplit split, int64_t index, SynthStream purpose) {
    // chain the four values through splitmix64 so nearby (split, index) pairs share nothing
    uint64_t state = seed;
    uint64_t h = splitmix64(&state);
    state = h ^ (uint64_t)split;
    h = splitmix64(&state);
    state = h ^ (uint64_t)index;
    h = splitmix64(&state);
    state = h ^ (uint64_t)purpose;
    return splitmix64(&state);
}

/* k distinct values of 0..n-1 in random order (a partial Fisher-Yates shuffle). */
static void sample_distinct(Rng *rng, int n, int k, int *out) {
    int pool[32];
    for (int i = 0; i < n; i++) pool[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(rng, (uint64_t)(n - i));
        int t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        out[i] = pool[i];
    }
}

static float uniform(Rng *rng, float lo, float hi) { return lo + (hi - lo) * (float)rng_uniform(rng); }

static uint8_t clamp_u8(float x) { return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : lrintf(x)); }

/* Sizes, turns, tints and places scene->objects[i] (kind and colour already set) where its
 * bounding circle misses those of objects 0..i-1, shrinking it when 50 tries find no room. */
static void place_object(Rng *rng, SynthScene *scene, int i, SynthSplit split, int64_t index) {
    SynthObject *o = &scene->objects[i];
    o->radius = uniform(rng, 0.13f, 0.21f);
    o->angle = uniform(rng, -0.35f, 0.35f);
    for (int c = 0; c < 3; c++) o->rgb[c] = clamp_u8(COLOUR_RGB[o->colour][c] + uniform(rng, -12, 12));
    for (int tries = 0;; tries++) {
        if (tries > 0 && tries % 50 == 0) o->radius *= 0.85f; // no room: shrink and go on
        if (o->radius < 0.04f) die("synth: scene %s/%lld: no room for object %d", synth_split_names[split], (long long)index, i);
        o->cx = uniform(rng, o->radius, 1.0f - o->radius);
        o->cy = uniform(rng, o->radius, 1.0f - o->radius);
        int clear = 1;
        for (int j = 0; j < i && clear; j++) {
            const SynthObject *p = &scene->objects[j];
            float dx = o->cx - p->cx, dy = o->cy - p->cy, gap = o->radius + p->radius;
            clear = dx * dx + dy * dy >= gap * gap;
        }
        if (clear) break;
    }
}

void synth_make_scene(uint64_t seed, SynthSplit split, int64_t index, SynthScene *scene) {
    Rng rng;
    rng_seed(&rng, synth_stream_seed(seed, split, index, SYNTH_STREAM_SCENE));
    memset(scene, 0, sizeof(*scene));
    // 20% one object, 40% two, 40% three: more objects mean more distinct captions
    int draw = (int)rng_below(&rng, 10);
    scene->n_objects = draw < 2 ? 1 : draw < 6 ? 2 : 3;
    int kinds[SYNTH_MAX_OBJECTS], colours[SYNTH_MAX_OBJECTS];
    sample_distinct(&rng, SYNTH_N_KINDS, scene->n_objects, kinds);
    sample_distinct(&rng, SYNTH_N_COLOURS, scene->n_objects, colours);
    for (int i = 0; i < scene->n_objects; i++) {
        scene->objects[i].kind = kinds[i];
        scene->objects[i].colour = colours[i];
        place_object(&rng, scene, i, split, index);
    }
    // background: two low-saturation mid tones, so every palette colour stands out from it
    scene->texture = (int)rng_below(&rng, SYNTH_N_TEXTURES);
    float grey = uniform(&rng, 85, 170), step = uniform(&rng, 20, 45) * (rng_below(&rng, 2) ? 1 : -1);
    for (int c = 0; c < 3; c++) {
        float tint = uniform(&rng, -18, 18);
        scene->background[0][c] = clamp_u8(grey + tint);
        scene->background[1][c] = clamp_u8(grey + step + tint);
    }
    scene->noise_sigma = uniform(&rng, 3, 9);
    scene->texture_seed = rng_next(&rng);
}

/* One of the n values of 0..n_all-1 with used[v] == 0, uniformly. */
static int unused_value(Rng *rng, const int *used, int n_all) {
    int free_values[32], n = 0;
    for (int v = 0; v < n_all; v++)
        if (!used[v]) free_values[n++] = v;
    return free_values[rng_below(rng, (uint64_t)n)];
}

void synth_make_twin(uint64_t seed, SynthSplit split, int64_t index, const SynthScene *scene, SynthScene *twin) {
    if (scene->n_objects >= SYNTH_SCENE_CAPACITY) die("synth: scene %s/%lld already holds %d objects: no twin",
                                                      synth_split_names[split], (long long)index, scene->n_objects);
    Rng rng;
    rng_seed(&rng, synth_stream_seed(seed, split, index, SYNTH_STREAM_TWIN));
    *twin = *scene;
    twin->twin = 1;
    int kind_used[SYNTH_N_KINDS] = {0}, colour_used[SYNTH_N_COLOURS] = {0};
    for (int i = 0; i < scene->n_objects; i++) {
        kind_used[scene->objects[i].kind] = 1;
        colour_used[scene->objects[i].colour] = 1;
    }
    int added = twin->n_objects++;
    twin->objects[added].kind = unused_value(&rng, kind_used, SYNTH_N_KINDS);
    twin->objects[added].colour = unused_value(&rng, colour_used, SYNTH_N_COLOURS);
    place_object(&rng, twin, added, split, index);
}

int synth_scene_has_kind(const SynthScene *scene, int kind) {
    for (int i = 0; i < scene->n_objects; i++)
        if (scene->objects[i].kind == kind) return 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Rendering

static float smoothstep01(float t) { return t * t * (3 - 2 * t); }

/* The background mix weight (0..1) of every pixel, by texture kind. */
static void texture_weights(const SynthScene *scene, int size, Rng *rng, float *w) {
    switch (scene->texture) {
    case 0: { // value noise on a coarse grid, smoothly interpolated
        int g = 3 + (int)rng_below(rng, 5);
        float grid[9 * 9];
        for (int i = 0; i < (g + 1) * (g + 1); i++) grid[i] = (float)rng_uniform(rng);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                float gx = (x + 0.5f) / size * g, gy = (y + 0.5f) / size * g;
                int ix = (int)gx, iy = (int)gy;
                float fx = smoothstep01(gx - ix), fy = smoothstep01(gy - iy);
                const float *r0 = grid + iy * (g + 1) + ix, *r1 = r0 + (g + 1);
                w[y * size + x] = (r0[0] * (1 - fx) + r0[1] * fx) * (1 - fy) + (r1[0] * (1 - fx) + r1[1] * fx) * fy;
            }
        break;
    }
    case 1: { // soft stripes in a random direction
        float a = uniform(rng, 0, (float)M_PI), period = uniform(rng, 0.06f, 0.2f);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                float t = ((x + 0.5f) * cosf(a) + (y + 0.5f) * sinf(a)) / size / period;
                w[y * size + x] = 0.5f + 0.5f * sinf(2 * (float)M_PI * t);
            }
        break;
    }
    case 2: { // checkerboard
        float cell = uniform(rng, 0.08f, 0.25f);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                w[y * size + x] = (float)(((int)((x + 0.5f) / size / cell) + (int)((y + 0.5f) / size / cell)) & 1);
        break;
    }
    default: { // a linear gradient
        float a = uniform(rng, 0, 2 * (float)M_PI);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                float t = ((x + 0.5f) / size - 0.5f) * cosf(a) + ((y + 0.5f) / size - 0.5f) * sinf(a);
                w[y * size + x] = 0.5f + 0.7f * t;
            }
    }
    }
}

/* The detail shade of a colour: darker for light colours, lighter for dark ones. */
static void detail_colour(const uint8_t *rgb, float *out) {
    float lum = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
    for (int c = 0; c < 3; c++) out[c] = lum > 110 ? rgb[c] * 0.45f : rgb[c] + (255 - rgb[c]) * 0.5f;
}

static void draw_object(const SynthObject *o, int size, float *img) {
    float body[3] = {o->rgb[0], o->rgb[1], o->rgb[2]}, detail[3];
    detail_colour(o->rgb, detail);
    float ca = cosf(o->angle), sa = sinf(o->angle), r = o->radius * size;
    float cx = o->cx * size, cy = o->cy * size;
    int x0 = (int)floorf(cx - r), x1 = (int)ceilf(cx + r), y0 = (int)floorf(cy - r), y1 = (int)ceilf(cy + r);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size) x1 = size;
    if (y1 > size) y1 = size;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int hits[3] = {0, 0, 0};
            for (int sy = 0; sy < 3; sy++)
                for (int sx = 0; sx < 3; sx++) {
                    float dx = (x + (sx + 0.5f) / 3 - cx) / r, dy = (y + (sy + 0.5f) / 3 - cy) / r;
                    // into the object's frame: undo the rotation, and flip y so v points up
                    float u = ca * dx + sa * dy, v = -(-sa * dx + ca * dy);
                    hits[synth_shape_at(o->kind, u, v)]++;
                }
            if (hits[0] == 9) continue;
            float *p = img + 3 * ((size_t)y * size + x);
            for (int c = 0; c < 3; c++)
                p[c] = (p[c] * hits[0] + body[c] * hits[1] + detail[c] * hits[2]) / 9.0f;
        }
}

void synth_render(const SynthScene *scene, int size, uint8_t *rgb) {
    size_t n = (size_t)size * size;
    float *img = (float *)mallocCheck(3 * n * sizeof(float));
    float *w = (float *)mallocCheck(n * sizeof(float));
    Rng rng;
    rng_seed(&rng, scene->texture_seed);
    texture_weights(scene, size, &rng, w);
    for (size_t i = 0; i < n; i++) {
        float t = w[i] < 0 ? 0 : w[i] > 1 ? 1 : w[i];
        for (int c = 0; c < 3; c++)
            img[3 * i + c] = scene->background[0][c] * (1 - t) + scene->background[1][c] * t;
    }
    for (int i = 0; i < scene->n_objects; i++) draw_object(&scene->objects[i], size, img);
    // sensor-like noise over everything, objects included
    for (size_t i = 0; i < 3 * n; i++) rgb[i] = clamp_u8(img[i] + scene->noise_sigma * (float)rng_normal(&rng));
    free(img);
    free(w);
}
