/*
 * xrsim: a small, strict OpenXR 1.0 runtime for tests.
 *
 * It simulates one stereo head-mounted display so that an OpenXR application can be
 * run end to end (through the real Khronos loader and its API layers) on a machine
 * without a headset.  It is strict where real runtimes are lenient: wrong call order,
 * frame times it never predicted and malformed composition layers are errors, each
 * reported on stderr (and in XRSIM_LOG) with the function and the reason.
 *
 * Supported: instance, system (HMD, primary stereo), sessions with the
 * XR_MNDX_egl_enable binding (swapchain textures are created in the application's
 * EGL context through its getProcAddress), the XrGraphicsBindingOpenGLXlibKHR binding
 * (GLX, through libGL) or XR_MND_headless, reference spaces
 * (VIEW, LOCAL, STAGE), swapchains (GL_SRGB8_ALPHA8 / GL_RGBA8), frame timing at
 * 90 Hz in real or virtual time, views located from a scripted head trajectory,
 * controllers through actions: the interaction profiles of PROFILES below (Khronos
 * simple, Oculus Touch, Valve Index, HTC Vive, Microsoft motion, HP Reverb G2 with
 * XR_EXT_hp_mixed_reality_controller), boolean / float / vector2 inputs scripted per
 * frame, grip poses, haptics recorded in the log, a scripted profile change,
 * scripted session stop / exit / loss, XR_KHR_convert_timespec_time.  Not
 * supported: other graphics bindings, layers other than projection and quad,
 * binding remapping (a hand whose device profile the application suggested no
 * bindings for has no current profile and no active actions).
 *
 * Configuration (environment variables, read at xrCreateInstance):
 *   XRSIM_TIMING      "real" (default: xrWaitFrame sleeps to the next 90 Hz vsync)
 *                     or "virtual" (no sleeping; frame k is displayed at k/90 s)
 *   XRSIM_RATE        display refresh rate, Hz (default 90)
 *   XRSIM_RESOLUTION  recommended per-eye image size "WxH" (default 256x256)
 *   XRSIM_IPD         interpupillary distance, metres (default 0.064)
 *   XRSIM_FOV         per-eye field of view of the LEFT eye in degrees
 *                     "left,right,up,down" (default "-50,40,45,-50"; the right eye
 *                     mirrors it)
 *   XRSIM_HEAD        static head pose in STAGE space "px,py,pz,qx,qy,qz,qw"
 *                     (default "0,1.6,0,0,0,0,1")
 *   XRSIM_TRACE       CSV trace "t,device,px,py,pz,qx,qy,qz,qw" (header optional);
 *                     rows with device "head", "left" or "right" drive the head and
 *                     the hands' grip poses, t in seconds after instance creation
 *                     (virtual XrTime starts at 1 s there), linear/slerp
 *                     interpolation, held at the ends
 *   XRSIM_EVENTS      scripted session events "action@frames,..." where frames counts
 *                     xrEndFrame calls of the instance and action is one of
 *                     stop (STOPPING, then READY again after xrEndSession),
 *                     exit (STOPPING, then EXITING), loss (LOSS_PENDING),
 *                     instance_loss (XrEventDataInstanceLossPending)
 *   XRSIM_NO_STAGE    "1": no STAGE reference space
 *   XRSIM_NO_EGL      "1": no XR_MNDX_egl_enable (like SteamVR: GLX/Xlib binding only)
 *   XRSIM_UNORM_ONLY  "1": offer only GL_RGBA8 swapchains (read as linear colour)
 *   XRSIM_NEVER_EXIT  "1": after an exit request the session stays IDLE, never EXITING
 *   XRSIM_NO_HMD      "1": xrGetSystem answers XR_ERROR_FORM_FACTOR_UNAVAILABLE
 *   XRSIM_FAIL        "create_instance": xrCreateInstance fails (a broken runtime);
 *                     "hang": xrCreateInstance never returns (a stuck runtime)
 *   XRSIM_DUMP_DIR    folder: each submitted projection view is written there as
 *                     frame_NNNNNN_eyeE.ppm (NNNNNN: the instance's xrEndFrame count
 *                     from 0; top row first) and described in views.csv
 *   XRSIM_DUMP_EVERY  dump every Nth frame that has a projection layer (default 1)
 *   XRSIM_PROFILE     the controllers' interaction profile, e.g. "oculus/touch_controller"
 *                     (the part after /interaction_profiles/; default
 *                     "khr/simple_controller"; "none": no controllers)
 *   XRSIM_PROFILE_AT  scripted profile changes "profile@frames,..." (both hands; frames
 *                     count xrEndFrame calls; XrEventDataInteractionProfileChanged is
 *                     queued)
 *   XRSIM_INPUT       CSV of input values "frames,hand,path,x[,y]" (header optional):
 *                     from the xrSyncActions after that many xrEndFrame calls, input
 *                     `path` of hand "left"/"right" reads x (a vector2 input such as
 *                     /input/thumbstick reads x,y); held until changed, 0 before
 *   XRSIM_LOG         file to append the error and event log to (also on stderr);
 *                     each xrApplyHapticFeedback / xrStopHapticFeedback is logged as
 *                     "event: haptic hand=... amplitude=... duration_ns=... frequency=...
 *                     frame=..." / "event: haptic_stop hand=... frame=..."
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The EGL types the XR_MNDX_egl_enable binding names, declared here so that the
 * build needs no EGL development headers. */
typedef void *EGLDisplay;
typedef void *EGLConfig;
typedef void *EGLContext;
typedef void (*xrsim_egl_proc)(void);
typedef xrsim_egl_proc (*PFNEGLGETPROCADDRESSPROC)(const char *name);
/* ... and the Xlib/GLX types of XrGraphicsBindingOpenGLXlibKHR, opaque here. */
typedef struct _XDisplay Display;
typedef struct __GLXFBConfigRec *GLXFBConfig;
typedef unsigned long GLXDrawable;
typedef struct __GLXcontextRec *GLXContext;

#define XR_USE_GRAPHICS_API_OPENGL
#define XR_USE_PLATFORM_EGL
#define XR_USE_PLATFORM_XLIB
#define XR_USE_TIMESPEC
#define XR_NO_PROTOTYPES /* the entry points below are static, reached through xrGetInstanceProcAddr */
#include <openxr/openxr.h>
#include <openxr/openxr_platform.h>
#include <openxr/openxr_reflection.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- loader negotiation (openxr/loader_interfaces.h, absent from Debian's 1.0.20) ---- */
typedef enum XrLoaderInterfaceStructs {
    XR_LOADER_INTERFACE_STRUCT_UNINTIALIZED = 0,
    XR_LOADER_INTERFACE_STRUCT_LOADER_INFO,
    XR_LOADER_INTERFACE_STRUCT_API_LAYER_REQUEST,
    XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST,
    XR_LOADER_INTERFACE_STRUCT_API_LAYER_CREATE_INFO,
    XR_LOADER_INTERFACE_STRUCT_API_LAYER_NEXT_INFO,
} XrLoaderInterfaceStructs;

typedef struct XrNegotiateLoaderInfo {
    XrLoaderInterfaceStructs structType;
    uint32_t structVersion;
    size_t structSize;
    uint32_t minInterfaceVersion;
    uint32_t maxInterfaceVersion;
    XrVersion minApiVersion;
    XrVersion maxApiVersion;
} XrNegotiateLoaderInfo;

typedef struct XrNegotiateRuntimeRequest {
    XrLoaderInterfaceStructs structType;
    uint32_t structVersion;
    size_t structSize;
    uint32_t runtimeInterfaceVersion;
    XrVersion runtimeApiVersion;
    PFN_xrGetInstanceProcAddr getInstanceProcAddr;
} XrNegotiateRuntimeRequest;

/* ---- GL constants and entry points used through the application's getProcAddress ---- */
#define GL_TEXTURE_2D 0x0DE1
#define GL_TEXTURE_BINDING_2D 0x8069
#define GL_RGBA 0x1908
#define GL_UNSIGNED_BYTE 0x1401
#define GL_RGBA8 0x8058
#define GL_SRGB8_ALPHA8 0x8C43
#define GL_PACK_ALIGNMENT 0x0D05
#define GL_PACK_ROW_LENGTH 0x0D02
#define GL_PIXEL_PACK_BUFFER 0x88EB
#define GL_PIXEL_PACK_BUFFER_BINDING 0x88ED
#define GL_NO_ERROR 0
typedef unsigned int GLuint;
typedef int GLint;
typedef unsigned int GLenum;
typedef int GLsizei;

typedef struct GlFns {
    void (*GenTextures)(GLsizei, GLuint *);
    void (*DeleteTextures)(GLsizei, const GLuint *);
    void (*BindTexture)(GLenum, GLuint);
    void (*TexStorage2D)(GLenum, GLsizei, GLenum, GLsizei, GLsizei);
    void (*GetIntegerv)(GLenum, GLint *);
    void (*GetTexImage)(GLenum, GLint, GLenum, GLenum, void *);
    void (*PixelStorei)(GLenum, GLint);
    void (*BindBuffer)(GLenum, GLuint);
    GLenum (*GetError)(void);
    void *(*GetCurrentContext)(void); /* eglGetCurrentContext or glXGetCurrentContext */
} GlFns;

/* ---- small helpers ---- */
#define NS_PER_S 1000000000LL
#define MAX_EVENTS 64
#define MAX_PATHS 1024
#define MAX_INPUT_ROWS 4096
#define MAX_INPUTS 64
#define MAX_PROFILE_CHANGES 16
#define BINDING_SIZE 48
#define MAX_SCRIPT 16
#define MAX_PREDICTED 8
#define IMAGES_PER_SWAPCHAIN 3
#define MAX_IMAGE_SIZE 4096
#define MAGIC_INSTANCE 0x58494e53u
#define MAGIC_SESSION 0x58534553u
#define MAGIC_SPACE 0x58535043u
#define MAGIC_SWAPCHAIN 0x58535743u
#define MAGIC_ACTION_SET 0x58415354u
#define MAGIC_ACTION 0x58414354u

static FILE *g_log;
static long g_errors;

static const char *result_name(XrResult r) {
#define XRSIM_RESULT_CASE(name, value) case name: return #name;
    switch (r) { XR_LIST_ENUM_XrResult(XRSIM_RESULT_CASE) default: return "XR_UNKNOWN_RESULT"; }
#undef XRSIM_RESULT_CASE
}

static void note(const char *fmt, ...) {
    if (!g_log) return;
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(g_log, "event: %s\n", line);
    fflush(g_log);
}

/* Report an error result: every error the runtime returns goes through here. */
static XrResult fail(XrResult r, const char *fn, const char *fmt, ...) {
    char why[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    g_errors++;
    char line[1024];
    snprintf(line, sizeof line, "%s: %s: %s", fn, result_name(r), why);
    fprintf(stderr, "xrsim: error: %s\n", line);
    if (g_log) {
        fprintf(g_log, "error: %s\n", line);
        fflush(g_log);
    }
    return r;
}

static int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static const char *env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

/* Two-call idiom: count query when capacity is 0, else copy. */
#define TWO_CALL(fn, cap, count_out, n, copy_stmt)                                     \
    do {                                                                               \
        if (!(count_out)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "count output is NULL"); \
        *(count_out) = (uint32_t)(n);                                                  \
        if ((cap) == 0) return XR_SUCCESS;                                             \
        if ((cap) < (uint32_t)(n))                                                     \
            return fail(XR_ERROR_SIZE_INSUFFICIENT, fn, "capacity %u < %u", (unsigned)(cap), (unsigned)(n)); \
        copy_stmt;                                                                     \
        return XR_SUCCESS;                                                             \
    } while (0)

/* ---- pose math: quaternions xyzw, rigid transforms ---- */
typedef struct { double x, y, z, w; } Quat;
typedef struct { double x, y, z; } Vec3;
typedef struct { Quat q; Vec3 p; } Pose;

static Quat qmul(Quat a, Quat b) {
    return (Quat){a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
                  a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                  a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
                  a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z};
}
static Quat qconj(Quat q) { return (Quat){-q.x, -q.y, -q.z, q.w}; }
static Vec3 qrot(Quat q, Vec3 v) {
    Quat p = qmul(qmul(q, (Quat){v.x, v.y, v.z, 0}), qconj(q));
    return (Vec3){p.x, p.y, p.z};
}
static Quat qnorm(Quat q) {
    double n = sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
    return (Quat){q.x / n, q.y / n, q.z / n, q.w / n};
}
static Pose pmul(Pose a, Pose b) { /* a * b: b expressed in a's frame -> a's parent */
    Vec3 r = qrot(a.q, b.p);
    return (Pose){qnorm(qmul(a.q, b.q)), {a.p.x + r.x, a.p.y + r.y, a.p.z + r.z}};
}
static Pose pinv(Pose a) {
    Quat c = qconj(a.q);
    Vec3 r = qrot(c, a.p);
    return (Pose){c, {-r.x, -r.y, -r.z}};
}
static Pose from_xr(XrPosef p) {
    return (Pose){{p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w},
                  {p.position.x, p.position.y, p.position.z}};
}
static XrPosef to_xr(Pose p) {
    XrPosef r;
    r.orientation = (XrQuaternionf){(float)p.q.x, (float)p.q.y, (float)p.q.z, (float)p.q.w};
    r.position = (XrVector3f){(float)p.p.x, (float)p.p.y, (float)p.p.z};
    return r;
}
static bool pose_valid(XrPosef p) {
    double n = sqrt((double)p.orientation.x * p.orientation.x + (double)p.orientation.y * p.orientation.y +
                    (double)p.orientation.z * p.orientation.z + (double)p.orientation.w * p.orientation.w);
    return isfinite(n) && fabs(n - 1.0) < 1e-3 && isfinite(p.position.x) &&
           isfinite(p.position.y) && isfinite(p.position.z);
}

static Quat slerp(Quat a, Quat b, double t) {
    double d = a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    if (d < 0) { b = (Quat){-b.x, -b.y, -b.z, -b.w}; d = -d; }
    if (d > 0.9995) {
        return qnorm((Quat){a.x + t * (b.x - a.x), a.y + t * (b.y - a.y), a.z + t * (b.z - a.z),
                            a.w + t * (b.w - a.w)});
    }
    double th = acos(d), s = sin(th), wa = sin((1 - t) * th) / s, wb = sin(t * th) / s;
    return (Quat){wa * a.x + wb * b.x, wa * a.y + wb * b.y, wa * a.z + wb * b.z, wa * a.w + wb * b.w};
}

/* ---- device trajectories: head, left and right hand ---- */
enum { DEV_HEAD, DEV_LEFT, DEV_RIGHT, N_DEVICES };
static const char *const DEVICE_NAMES[N_DEVICES] = {"head", "left", "right"};
typedef struct { double t; Pose pose; } Sample;
typedef struct {
    Sample *samples;
    size_t count;
    Pose fixed;
} Trajectory;

static int parse_doubles(const char *s, double *out, int n) {
    int k = 0;
    const char *p = s;
    while (k < n && *p) {
        char *end;
        out[k] = strtod(p, &end);
        if (end == p) return -1;
        k++;
        p = end;
        while (*p == ',' || isspace((unsigned char)*p)) p++;
    }
    return k;
}

static bool load_trace(Trajectory *devices, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errlen, "XRSIM_TRACE %s: %s", path, strerror(errno)); return false; }
    size_t caps[N_DEVICES] = {0};
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#' || isalpha((unsigned char)*s)) continue; /* blank, comment, header */
        char *c1 = strchr(s, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2) { snprintf(err, errlen, "XRSIM_TRACE %s:%d: expected t,device,px,py,pz,qx,qy,qz,qw", path, lineno); fclose(f); return false; }
        char device[32];
        size_t dl = (size_t)(c2 - c1 - 1);
        if (dl >= sizeof device) dl = sizeof device - 1;
        memcpy(device, c1 + 1, dl);
        device[dl] = 0;
        int d = 0;
        while (d < N_DEVICES && strcmp(device, DEVICE_NAMES[d])) d++;
        if (d == N_DEVICES) continue; /* other tracked objects are not simulated */
        Trajectory *tr = &devices[d];
        double v[7];
        if (parse_doubles(c2 + 1, v, 7) != 7) { snprintf(err, errlen, "XRSIM_TRACE %s:%d: expected 7 pose numbers", path, lineno); fclose(f); return false; }
        if (tr->count == caps[d]) { caps[d] = caps[d] ? 2 * caps[d] : 256; tr->samples = realloc(tr->samples, caps[d] * sizeof(Sample)); }
        Sample *sm = &tr->samples[tr->count++];
        sm->t = strtod(s, NULL);
        sm->pose = (Pose){qnorm((Quat){v[3], v[4], v[5], v[6]}), {v[0], v[1], v[2]}};
        if (tr->count > 1 && sm->t <= tr->samples[tr->count - 2].t) { snprintf(err, errlen, "XRSIM_TRACE %s:%d: times must increase", path, lineno); fclose(f); return false; }
    }
    fclose(f);
    if (!devices[DEV_HEAD].count && !devices[DEV_LEFT].count && !devices[DEV_RIGHT].count) { snprintf(err, errlen, "XRSIM_TRACE %s: no head, left or right rows", path); return false; }
    return true;
}

/* A device's pose at t (s after instance creation); the fixed pose without trace rows. */
static Pose pose_at(const Trajectory *tr, double t) {
    if (!tr->count) return tr->fixed;
    if (t <= tr->samples[0].t) return tr->samples[0].pose;
    if (t >= tr->samples[tr->count - 1].t) return tr->samples[tr->count - 1].pose;
    size_t lo = 0, hi = tr->count - 1;
    while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if (tr->samples[mid].t <= t) lo = mid; else hi = mid; }
    const Sample *a = &tr->samples[lo], *b = &tr->samples[hi];
    double u = (t - a->t) / (b->t - a->t);
    return (Pose){slerp(a->pose.q, b->pose.q, u),
                  {a->pose.p.x + u * (b->pose.p.x - a->pose.p.x), a->pose.p.y + u * (b->pose.p.y - a->pose.p.y),
                   a->pose.p.z + u * (b->pose.p.z - a->pose.p.z)}};
}

/* ---- objects ---- */
typedef enum { ACT_STOP, ACT_EXIT, ACT_LOSS, ACT_INSTANCE_LOSS } ScriptAction;
typedef struct { ScriptAction action; long frame; bool done; } Scripted;

struct XrInstance_T;
struct XrSession_T;

typedef struct XrSwapchain_T {
    uint32_t magic;
    struct XrSession_T *session;
    uint32_t width, height;
    int64_t format;
    GLuint images[IMAGES_PER_SWAPCHAIN];
    uint32_t next_acquire;
    /* FIFO of acquired images: [head, head+acquired) acquired, of which the first `waited` waited */
    uint32_t acquired, waited, head;
    int32_t last_released;
    struct XrSwapchain_T *next_in_list;
} Swapchain;

#define SPACE_ACTION ((XrReferenceSpaceType)0x7ffffffe) /* an action space, not a reference space */
#define MAX_ACTIONS 64
#define MAX_ACTION_SETS 8
static const char *const HAND_PATHS[2] = {"/user/hand/left", "/user/hand/right"};
#define PROFILE_PREFIX "/interaction_profiles/"
#define POSES_HAPTIC "/input/grip/pose", "/input/aim/pose", "/output/haptic"
#define THUMBSTICK "/input/thumbstick", "/input/thumbstick/x", "/input/thumbstick/y", "/input/thumbstick/click"
#define TRACKPAD "/input/trackpad", "/input/trackpad/x", "/input/trackpad/y", "/input/trackpad/touch"
typedef struct { const char *name; const char *extension; const char *const inputs[32]; } Profile;
/* the inputs of each profile, accepted on both hands (the spec gives some to one hand only) */
static const Profile PROFILES[] = {
    {"khr/simple_controller", NULL, {"/input/select/click", "/input/menu/click", POSES_HAPTIC}},
    {"oculus/touch_controller", NULL, {"/input/x/click", "/input/x/touch", "/input/y/click", "/input/y/touch",
        "/input/a/click", "/input/a/touch", "/input/b/click", "/input/b/touch", "/input/menu/click",
        "/input/squeeze/value", "/input/trigger/value", "/input/trigger/touch", THUMBSTICK,
        "/input/thumbstick/touch", "/input/thumbrest/touch", POSES_HAPTIC}},
    {"valve/index_controller", NULL, {"/input/system/click", "/input/system/touch", "/input/a/click",
        "/input/a/touch", "/input/b/click", "/input/b/touch", "/input/squeeze/value", "/input/squeeze/force",
        "/input/trigger/click", "/input/trigger/value", "/input/trigger/touch", THUMBSTICK,
        "/input/thumbstick/touch", TRACKPAD, "/input/trackpad/force", POSES_HAPTIC}},
    {"htc/vive_controller", NULL, {"/input/system/click", "/input/squeeze/click", "/input/menu/click",
        "/input/trigger/click", "/input/trigger/value", TRACKPAD, "/input/trackpad/click", POSES_HAPTIC}},
    {"microsoft/motion_controller", NULL, {"/input/menu/click", "/input/squeeze/click", "/input/trigger/value",
        THUMBSTICK, TRACKPAD, "/input/trackpad/click", POSES_HAPTIC}},
    {"hp/mixed_reality_controller", XR_EXT_HP_MIXED_REALITY_CONTROLLER_EXTENSION_NAME, {"/input/x/click",
        "/input/y/click", "/input/a/click", "/input/b/click", "/input/menu/click", "/input/squeeze/value",
        "/input/trigger/value", THUMBSTICK, POSES_HAPTIC}},
};
#define N_PROFILES ((int)(sizeof PROFILES / sizeof PROFILES[0]))
#define SIMPLE_PROFILE 0

static int profile_index(const char *name) { /* name without the prefix; -1: unknown */
    for (int i = 0; i < N_PROFILES; i++)
        if (!strcmp(PROFILES[i].name, name)) return i;
    return -1;
}

static bool profile_has(int profile, const char *input) {
    for (int i = 0; i < 32 && PROFILES[profile].inputs[i]; i++)
        if (!strcmp(PROFILES[profile].inputs[i], input)) return true;
    return false;
}

typedef struct { long frame; int hand; char path[BINDING_SIZE]; float x, y; } InputRow;
typedef struct { int hand; char path[BINDING_SIZE]; float x, y; } InputValue;
typedef struct { long frame; int profile; bool done; } ProfileChange;

typedef struct XrActionSet_T {
    uint32_t magic;
    char name[XR_MAX_ACTION_SET_NAME_SIZE];
    bool attached;
} ActionSet;

typedef struct XrAction_T {
    uint32_t magic;
    ActionSet *set;
    char name[XR_MAX_ACTION_NAME_SIZE];
    XrActionType type;
    XrPath subaction[2];
    uint32_t subaction_count;
    char binding[N_PROFILES][2][BINDING_SIZE]; /* per profile and hand: the suggested input ("" none) */
    /* state at the last xrSyncActions, per hand */
    float x[2], y[2];
    bool active[2], changed[2];
    XrTime changed_at[2];
} Action;

typedef struct XrSpace_T {
    uint32_t magic;
    struct XrSession_T *session;
    XrReferenceSpaceType type;
    int hand;          /* action spaces: 0 left, 1 right */
    Action *action;    /* action spaces: their pose action */
    Pose offset;
    struct XrSpace_T *next_in_list;
} Space;

typedef struct XrSession_T {
    uint32_t magic;
    struct XrInstance_T *instance;
    bool headless, glx;
    void *display; /* EGLDisplay or X Display* */
    void *context; /* EGLContext or GLXContext */
    GlFns gl;
    XrSessionState state;
    bool running;
    XrViewConfigurationType view_config;
    bool exit_requested, restart_after_stop, loss_pending;
    /* frame bookkeeping */
    int waits_pending;        /* xrWaitFrame returns not yet followed by xrBeginFrame */
    bool frame_begun;
    XrTime predicted[MAX_PREDICTED]; /* display times handed out, oldest first */
    int predicted_count;
    XrTime frame_time;        /* display time of the begun frame */
    int64_t vsync;            /* index of the last vsync a frame was given */
    long frames_ended, sessions_frames;
    bool actions_attached, actions_active; /* active: the last xrSyncActions was while FOCUSED */
    Swapchain *swapchains;
    Space *spaces;
} Session;

typedef struct XrInstance_T {
    uint32_t magic;
    bool ext_opengl, ext_egl, ext_headless, ext_timespec;
    bool system_got, gl_requirements_queried;
    XrEventDataBuffer events[MAX_EVENTS];
    int event_head, event_count;
    char *paths[MAX_PATHS];
    int path_count;
    Session *session;
    /* configuration */
    bool virtual_time, no_stage, no_hmd, no_egl, unorm_only, never_exit;
    double rate_hz, ipd;
    uint32_t width, height;
    XrFovf fov[2];
    Trajectory devices[N_DEVICES];
    Scripted script[MAX_SCRIPT];
    int script_count;
    char dump_dir[512];
    long dump_every, dumped_frames, layered_frames;
    FILE *views_csv;
    int64_t t0;               /* XrTime of instance creation (ns) */
    int64_t period;           /* ns per refresh */
    int64_t last_wait_real;   /* monotonic ns when the last xrWaitFrame returned */
    XrTime last_wait_time;    /* its frame start on the runtime timeline */
    long frames_ended, frames_waited, layers_submitted;
    ActionSet *sets[MAX_ACTION_SETS];
    Action *actions[MAX_ACTIONS];
    int set_count, action_count;
    bool ext_hp_controller;
    bool suggested[N_PROFILES];   /* the application suggested bindings for the profile */
    int device_profile;           /* the controllers' profile (both hands), -1 none */
    ProfileChange profile_changes[MAX_PROFILE_CHANGES];
    int profile_change_count;
    InputRow *input_rows;
    int input_row_count, input_next;
    InputValue inputs[MAX_INPUTS];
    int input_count;
    long haptics, haptic_stops;
} Instance;

static Instance *g_instance;

static const char *const EXTENSIONS[] = {
    XR_KHR_OPENGL_ENABLE_EXTENSION_NAME, XR_MNDX_EGL_ENABLE_EXTENSION_NAME,
    XR_MND_HEADLESS_EXTENSION_NAME, XR_KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME,
    XR_EXT_HP_MIXED_REALITY_CONTROLLER_EXTENSION_NAME,
};
static const uint32_t EXTENSION_VERSIONS[] = {
    XR_KHR_opengl_enable_SPEC_VERSION, XR_MNDX_egl_enable_SPEC_VERSION,
    XR_MND_headless_SPEC_VERSION, XR_KHR_convert_timespec_time_SPEC_VERSION,
    XR_EXT_hp_mixed_reality_controller_SPEC_VERSION,
};
#define N_EXTENSIONS (sizeof EXTENSIONS / sizeof EXTENSIONS[0])
static const int64_t FORMATS[] = {GL_SRGB8_ALPHA8, GL_RGBA8};
#define SYSTEM_ID ((XrSystemId)0x5853)

#define CHECK_INSTANCE(fn, inst)                                                       \
    do {                                                                               \
        if (!(inst) || (inst) != g_instance || (inst)->magic != MAGIC_INSTANCE)        \
            return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrInstance %p", (void *)(inst)); \
    } while (0)
#define CHECK_SESSION(fn, s)                                                           \
    do {                                                                               \
        if (!(s) || !g_instance || g_instance->session != (s) || (s)->magic != MAGIC_SESSION) \
            return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSession %p", (void *)(s)); \
    } while (0)
#define CHECK_TYPE(fn, ptr, want)                                                      \
    do {                                                                               \
        if (!(ptr)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, #ptr " is NULL");     \
        if ((ptr)->type != (want))                                                     \
            return fail(XR_ERROR_VALIDATION_FAILURE, fn, #ptr "->type is %d, expected " #want, (int)(ptr)->type); \
    } while (0)

static Space *find_space(Session *s, XrSpace h) {
    for (Space *sp = s->spaces; sp; sp = sp->next_in_list)
        if (sp == (Space *)h && sp->magic == MAGIC_SPACE) return sp;
    return NULL;
}
static Swapchain *find_swapchain(Session *s, XrSwapchain h) {
    for (Swapchain *sc = s->swapchains; sc; sc = sc->next_in_list)
        if (sc == (Swapchain *)h && sc->magic == MAGIC_SWAPCHAIN) return sc;
    return NULL;
}
static Swapchain *find_any_swapchain(XrSwapchain h) {
    if (!g_instance || !g_instance->session) return NULL;
    return find_swapchain(g_instance->session, h);
}
static Space *find_any_space(XrSpace h) {
    if (!g_instance || !g_instance->session) return NULL;
    return find_space(g_instance->session, h);
}

/* ---- events ---- */
static void push_event(Instance *inst, const void *event, size_t size) {
    if (inst->event_count == MAX_EVENTS) {
        fail(XR_ERROR_RUNTIME_FAILURE, "event queue", "overflow: the application does not poll events");
        return;
    }
    XrEventDataBuffer *slot = &inst->events[(inst->event_head + inst->event_count) % MAX_EVENTS];
    memset(slot, 0, sizeof *slot);
    memcpy(slot, event, size);
    inst->event_count++;
}

static const char *state_name(XrSessionState st) {
    switch (st) {
    case XR_SESSION_STATE_IDLE: return "IDLE";
    case XR_SESSION_STATE_READY: return "READY";
    case XR_SESSION_STATE_SYNCHRONIZED: return "SYNCHRONIZED";
    case XR_SESSION_STATE_VISIBLE: return "VISIBLE";
    case XR_SESSION_STATE_FOCUSED: return "FOCUSED";
    case XR_SESSION_STATE_STOPPING: return "STOPPING";
    case XR_SESSION_STATE_LOSS_PENDING: return "LOSS_PENDING";
    case XR_SESSION_STATE_EXITING: return "EXITING";
    default: return "UNKNOWN";
    }
}

static XrTime now_time(Instance *inst) {
    if (!inst->virtual_time) return monotonic_ns();
    return inst->last_wait_time + (monotonic_ns() - inst->last_wait_real);
}

static void set_state(Session *s, XrSessionState st) {
    s->state = st;
    if (st != XR_SESSION_STATE_FOCUSED) s->actions_active = false; /* input needs focus */
    XrEventDataSessionStateChanged ev = {.type = XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED};
    ev.session = (XrSession)s;
    ev.state = st;
    ev.time = now_time(s->instance);
    push_event(s->instance, &ev, sizeof ev);
    note("session state %s", state_name(st));
}

/* Walk down from a running state to STOPPING, one event per state as the spec orders. */
static void stop_session(Session *s) {
    if (s->state == XR_SESSION_STATE_FOCUSED) set_state(s, XR_SESSION_STATE_VISIBLE);
    if (s->state == XR_SESSION_STATE_VISIBLE) set_state(s, XR_SESSION_STATE_SYNCHRONIZED);
    if (s->state == XR_SESSION_STATE_SYNCHRONIZED || s->state == XR_SESSION_STATE_READY)
        set_state(s, XR_SESSION_STATE_STOPPING);
}

static void run_script(Instance *inst) {
    Session *s = inst->session;
    for (int i = 0; i < inst->script_count; i++) {
        Scripted *e = &inst->script[i];
        if (e->done || inst->frames_ended < e->frame) continue;
        e->done = true;
        switch (e->action) {
        case ACT_STOP:
            if (s && s->running) { s->restart_after_stop = true; stop_session(s); note("scripted stop"); }
            break;
        case ACT_EXIT:
            if (s && s->running) { s->exit_requested = true; stop_session(s); note("scripted exit"); }
            break;
        case ACT_LOSS:
            if (s) { s->loss_pending = true; set_state(s, XR_SESSION_STATE_LOSS_PENDING); note("scripted session loss"); }
            break;
        case ACT_INSTANCE_LOSS: {
            XrEventDataInstanceLossPending ev = {.type = XR_TYPE_EVENT_DATA_INSTANCE_LOSS_PENDING};
            ev.lossTime = now_time(inst) + NS_PER_S;
            push_event(inst, &ev, sizeof ev);
            note("scripted instance loss");
            break;
        }
        }
    }
}

/* ---- configuration ---- */
static bool load_input(Instance *inst, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errlen, "XRSIM_INPUT: cannot open %s: %s", path, strerror(errno)); return false; }
    inst->input_rows = calloc(MAX_INPUT_ROWS, sizeof *inst->input_rows);
    char line[256];
    int number = 0;
    while (fgets(line, sizeof line, f)) {
        number++;
        if (line[0] == '#' || line[0] == '\n' || !strncmp(line, "frame", 5)) continue;
        InputRow r = {0};
        char hand[16];
        int got = sscanf(line, " %ld , %15[a-z] , %47[a-z_/] , %f , %f", &r.frame, hand, r.path, &r.x, &r.y);
        if (got < 4 || (strcmp(hand, "left") && strcmp(hand, "right")) || inst->input_row_count == MAX_INPUT_ROWS) {
            snprintf(err, errlen, "XRSIM_INPUT %s line %d: expected frames,left|right,path,x[,y]", path, number);
            fclose(f);
            return false;
        }
        r.hand = !strcmp(hand, "right");
        inst->input_rows[inst->input_row_count++] = r;
    }
    fclose(f);
    return true;
}

/* The next "name@frame" item of a comma-separated script in *cursor (advanced past it). */
static bool next_scripted(const char **cursor, const char *var, bool full, char name[64], long *frame, char *err, size_t errlen) {
    int used = 0;
    if (full || sscanf(*cursor, " %63[a-z_/]@%ld%n", name, frame, &used) != 2) { snprintf(err, errlen, "%s: expected name@frame,... (at most a few) near %.20s", var, *cursor); return false; }
    *cursor += used;
    while (**cursor == ',' || isspace((unsigned char)**cursor)) (*cursor)++;
    return true;
}

static bool configure(Instance *inst, char *err, size_t errlen) {
    const char *timing = env("XRSIM_TIMING", "real");
    if (strcmp(timing, "virtual") && strcmp(timing, "real")) { snprintf(err, errlen, "XRSIM_TIMING=%s: expected real or virtual", timing); return false; }
    inst->virtual_time = !strcmp(timing, "virtual");
    inst->rate_hz = atof(env("XRSIM_RATE", "90"));
    if (!(inst->rate_hz >= 1 && inst->rate_hz <= 1000)) { snprintf(err, errlen, "XRSIM_RATE: expected 1..1000 Hz"); return false; }
    inst->period = (int64_t)llround(NS_PER_S / inst->rate_hz);
    unsigned w = 0, h = 0;
    if (sscanf(env("XRSIM_RESOLUTION", "256x256"), "%ux%u", &w, &h) != 2 || !w || !h || w > MAX_IMAGE_SIZE || h > MAX_IMAGE_SIZE) { snprintf(err, errlen, "XRSIM_RESOLUTION: expected WxH, 1..%d", MAX_IMAGE_SIZE); return false; }
    inst->width = w;
    inst->height = h;
    inst->ipd = atof(env("XRSIM_IPD", "0.064"));
    double fov[4];
    if (parse_doubles(env("XRSIM_FOV", "-50,40,45,-50"), fov, 4) != 4 || !(fov[0] < fov[1]) || !(fov[3] < fov[2]) ||
        fov[0] <= -89 || fov[1] >= 89 || fov[2] >= 89 || fov[3] <= -89) { snprintf(err, errlen, "XRSIM_FOV: expected left,right,up,down degrees with left<right, down<up, each within +-89"); return false; }
    double r = M_PI / 180.0;
    inst->fov[0] = (XrFovf){(float)(fov[0] * r), (float)(fov[1] * r), (float)(fov[2] * r), (float)(fov[3] * r)};
    inst->fov[1] = (XrFovf){(float)(-fov[1] * r), (float)(-fov[0] * r), (float)(fov[2] * r), (float)(fov[3] * r)};
    double hp[7];
    if (parse_doubles(env("XRSIM_HEAD", "0,1.6,0,0,0,0,1"), hp, 7) != 7) { snprintf(err, errlen, "XRSIM_HEAD: expected px,py,pz,qx,qy,qz,qw"); return false; }
    inst->devices[DEV_HEAD].fixed = (Pose){qnorm((Quat){hp[3], hp[4], hp[5], hp[6]}), {hp[0], hp[1], hp[2]}};
    inst->devices[DEV_LEFT].fixed = (Pose){{0, 0, 0, 1}, {-0.2, 1.15, -0.3}};  /* hands in front of the hips */
    inst->devices[DEV_RIGHT].fixed = (Pose){{0, 0, 0, 1}, {0.2, 1.15, -0.3}};
    const char *trace = getenv("XRSIM_TRACE");
    if (trace && *trace && !load_trace(inst->devices, trace, err, errlen)) return false;
    inst->no_stage = !strcmp(env("XRSIM_NO_STAGE", "0"), "1");
    inst->no_hmd = !strcmp(env("XRSIM_NO_HMD", "0"), "1");
    inst->no_egl = !strcmp(env("XRSIM_NO_EGL", "0"), "1");
    inst->unorm_only = !strcmp(env("XRSIM_UNORM_ONLY", "0"), "1");
    inst->never_exit = !strcmp(env("XRSIM_NEVER_EXIT", "0"), "1");
    const char *script = env("XRSIM_EVENTS", "");
    while (*script) {
        char name[64];
        long frame;
        if (!next_scripted(&script, "XRSIM_EVENTS", inst->script_count == MAX_SCRIPT, name, &frame, err, errlen)) return false;
        Scripted *e = &inst->script[inst->script_count++];
        e->frame = frame;
        if (!strcmp(name, "stop")) e->action = ACT_STOP;
        else if (!strcmp(name, "exit")) e->action = ACT_EXIT;
        else if (!strcmp(name, "loss")) e->action = ACT_LOSS;
        else if (!strcmp(name, "instance_loss")) e->action = ACT_INSTANCE_LOSS;
        else { snprintf(err, errlen, "XRSIM_EVENTS: unknown action %s (stop, exit, loss, instance_loss)", name); return false; }
    }
    const char *profile = env("XRSIM_PROFILE", PROFILES[SIMPLE_PROFILE].name);
    inst->device_profile = strcmp(profile, "none") ? profile_index(profile) : -1;
    if (inst->device_profile < 0 && strcmp(profile, "none")) { snprintf(err, errlen, "XRSIM_PROFILE: unknown interaction profile %s", profile); return false; }
    const char *changes = env("XRSIM_PROFILE_AT", "");
    while (*changes) {
        char name[64];
        long frame;
        if (!next_scripted(&changes, "XRSIM_PROFILE_AT", inst->profile_change_count == MAX_PROFILE_CHANGES, name, &frame, err, errlen)) return false;
        int k = strcmp(name, "none") ? profile_index(name) : -1;
        if (k < 0 && strcmp(name, "none")) { snprintf(err, errlen, "XRSIM_PROFILE_AT: unknown interaction profile %s", name); return false; }
        inst->profile_changes[inst->profile_change_count++] = (ProfileChange){frame, k, false};
    }
    const char *input = getenv("XRSIM_INPUT");
    if (input && *input && !load_input(inst, input, err, errlen)) return false;
    snprintf(inst->dump_dir, sizeof inst->dump_dir, "%s", env("XRSIM_DUMP_DIR", ""));
    inst->dump_every = atol(env("XRSIM_DUMP_EVERY", "1"));
    if (inst->dump_every < 1) inst->dump_every = 1;
    return true;
}

/* ==== instance ==== */
/* XRSIM_NO_EGL hides XR_MNDX_egl_enable, as runtimes without it (SteamVR) do. */
static bool extension_offered(size_t k) {
    return strcmp(EXTENSIONS[k], XR_MNDX_EGL_ENABLE_EXTENSION_NAME) || strcmp(env("XRSIM_NO_EGL", "0"), "1");
}

static XrResult XRAPI_CALL xrEnumerateInstanceExtensionProperties(const char *layerName, uint32_t cap, uint32_t *count, XrExtensionProperties *props) {
    const char *fn = "xrEnumerateInstanceExtensionProperties";
    if (layerName) return fail(XR_ERROR_API_LAYER_NOT_PRESENT, fn, "no layer %s in the runtime", layerName);
    if (cap && !props) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "properties is NULL");
    for (uint32_t i = 0; i < cap && i < N_EXTENSIONS; i++)
        if (props[i].type != XR_TYPE_EXTENSION_PROPERTIES) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "properties[%u].type is not XR_TYPE_EXTENSION_PROPERTIES", i);
    size_t offered[N_EXTENSIONS], n = 0;
    for (size_t k = 0; k < N_EXTENSIONS; k++)
        if (extension_offered(k)) offered[n++] = k;
    TWO_CALL(fn, cap, count, n, for (size_t i = 0; i < n; i++) {
        snprintf(props[i].extensionName, XR_MAX_EXTENSION_NAME_SIZE, "%s", EXTENSIONS[offered[i]]);
        props[i].extensionVersion = EXTENSION_VERSIONS[offered[i]];
    });
}

static XrResult XRAPI_CALL xrEnumerateApiLayerProperties(uint32_t cap, uint32_t *count, XrApiLayerProperties *props) {
    (void)cap;
    (void)props;
    if (!count) return fail(XR_ERROR_VALIDATION_FAILURE, "xrEnumerateApiLayerProperties", "count output is NULL");
    *count = 0; /* the runtime carries no API layers */
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrCreateInstance(const XrInstanceCreateInfo *info, XrInstance *out) {
    const char *fn = "xrCreateInstance";
    CHECK_TYPE(fn, info, XR_TYPE_INSTANCE_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "instance output is NULL");
    const char *logpath = getenv("XRSIM_LOG");
    if (logpath && *logpath && !g_log) g_log = fopen(logpath, "a");
    while (!strcmp(env("XRSIM_FAIL", ""), "hang")) pause(); /* until a signal ends the process */
    if (!strcmp(env("XRSIM_FAIL", ""), "create_instance"))
        return fail(XR_ERROR_RUNTIME_FAILURE, fn, "XRSIM_FAIL=create_instance (simulated broken runtime)");
    if (g_instance) return fail(XR_ERROR_LIMIT_REACHED, fn, "one instance at a time");
    XrVersion v = info->applicationInfo.apiVersion;
    if (XR_VERSION_MAJOR(v) != 1 || XR_VERSION_MINOR(v) != 0)
        return fail(XR_ERROR_API_VERSION_UNSUPPORTED, fn, "API %u.%u requested; xrsim implements 1.0", XR_VERSION_MAJOR(v), XR_VERSION_MINOR(v));
    if (info->createFlags) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "createFlags must be 0");
    if (info->enabledApiLayerCount) return fail(XR_ERROR_API_LAYER_NOT_PRESENT, fn, "the loader, not the runtime, handles API layers");
    Instance *inst = calloc(1, sizeof *inst);
    for (uint32_t i = 0; i < info->enabledExtensionCount; i++) {
        const char *e = info->enabledExtensionNames[i];
        bool known = false;
        for (size_t k = 0; k < N_EXTENSIONS; k++) known |= !strcmp(e, EXTENSIONS[k]) && extension_offered(k);
        if (!known) { free(inst); return fail(XR_ERROR_EXTENSION_NOT_PRESENT, fn, "extension %s not supported", e); }
        inst->ext_opengl |= !strcmp(e, XR_KHR_OPENGL_ENABLE_EXTENSION_NAME);
        inst->ext_egl |= !strcmp(e, XR_MNDX_EGL_ENABLE_EXTENSION_NAME);
        inst->ext_headless |= !strcmp(e, XR_MND_HEADLESS_EXTENSION_NAME);
        inst->ext_timespec |= !strcmp(e, XR_KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME);
        inst->ext_hp_controller |= !strcmp(e, XR_EXT_HP_MIXED_REALITY_CONTROLLER_EXTENSION_NAME);
    }
    char err[512] = "";
    if (!configure(inst, err, sizeof err)) {
        for (int d = 0; d < N_DEVICES; d++) free(inst->devices[d].samples);
        free(inst->input_rows);
        free(inst);
        return fail(XR_ERROR_RUNTIME_FAILURE, fn, "%s", err);
    }
    inst->magic = MAGIC_INSTANCE;
    inst->t0 = inst->virtual_time ? NS_PER_S : monotonic_ns();
    inst->last_wait_real = monotonic_ns();
    inst->last_wait_time = inst->t0;
    if (inst->dump_dir[0]) {
        char path[600];
        snprintf(path, sizeof path, "%s/views.csv", inst->dump_dir);
        inst->views_csv = fopen(path, "w");
        if (!inst->views_csv) {
            for (int d = 0; d < N_DEVICES; d++) free(inst->devices[d].samples);
            free(inst);
            return fail(XR_ERROR_RUNTIME_FAILURE, fn, "XRSIM_DUMP_DIR: cannot write %s: %s", path, strerror(errno));
        }
        fprintf(inst->views_csv, "frame,eye,display_time,px,py,pz,qx,qy,qz,qw,angle_left,angle_right,angle_up,angle_down,width,height,file\n");
    }
    g_errors = 0;
    g_instance = inst;
    *out = (XrInstance)inst;
    note("instance created by %s (timing %s)", info->applicationInfo.applicationName, inst->virtual_time ? "virtual" : "real");
    return XR_SUCCESS;
}

static void destroy_session_objects(Session *s);

static XrResult XRAPI_CALL xrDestroyInstance(XrInstance h) {
    Instance *inst = (Instance *)h;
    CHECK_INSTANCE("xrDestroyInstance", inst);
    if (inst->session) { destroy_session_objects(inst->session); free(inst->session); }
    note("summary frames_waited=%ld frames_ended=%ld layers=%ld dumped=%ld haptics=%ld haptic_stops=%ld errors=%ld",
         inst->frames_waited, inst->frames_ended, inst->layers_submitted, inst->dumped_frames, inst->haptics,
         inst->haptic_stops, g_errors);
    free(inst->input_rows);
    if (inst->views_csv) fclose(inst->views_csv);
    for (int i = 0; i < inst->path_count; i++) free(inst->paths[i]);
    for (int d = 0; d < N_DEVICES; d++) free(inst->devices[d].samples);
    for (int i = 0; i < inst->action_count; i++) free(inst->actions[i]);
    for (int i = 0; i < inst->set_count; i++) free(inst->sets[i]);
    inst->magic = 0;
    free(inst);
    g_instance = NULL;
    if (g_log) { fclose(g_log); g_log = NULL; }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrGetInstanceProperties(XrInstance h, XrInstanceProperties *props) {
    CHECK_INSTANCE("xrGetInstanceProperties", (Instance *)h);
    CHECK_TYPE("xrGetInstanceProperties", props, XR_TYPE_INSTANCE_PROPERTIES);
    props->runtimeVersion = XR_MAKE_VERSION(0, 1, 0);
    snprintf(props->runtimeName, XR_MAX_RUNTIME_NAME_SIZE, "xrsim (vrshare test runtime)");
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrPollEvent(XrInstance h, XrEventDataBuffer *buf) {
    Instance *inst = (Instance *)h;
    CHECK_INSTANCE("xrPollEvent", inst);
    CHECK_TYPE("xrPollEvent", buf, XR_TYPE_EVENT_DATA_BUFFER);
    if (!inst->event_count) return XR_EVENT_UNAVAILABLE;
    memcpy(buf, &inst->events[inst->event_head], sizeof *buf);
    inst->event_head = (inst->event_head + 1) % MAX_EVENTS;
    inst->event_count--;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrResultToString(XrInstance h, XrResult value, char buffer[XR_MAX_RESULT_STRING_SIZE]) {
    CHECK_INSTANCE("xrResultToString", (Instance *)h);
    const char *name = result_name(value);
    if (!strcmp(name, "XR_UNKNOWN_RESULT"))
        snprintf(buffer, XR_MAX_RESULT_STRING_SIZE, value < 0 ? "XR_UNKNOWN_FAILURE_%d" : "XR_UNKNOWN_SUCCESS_%d", (int)value);
    else
        snprintf(buffer, XR_MAX_RESULT_STRING_SIZE, "%s", name);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrStructureTypeToString(XrInstance h, XrStructureType value, char buffer[XR_MAX_STRUCTURE_NAME_SIZE]) {
    CHECK_INSTANCE("xrStructureTypeToString", (Instance *)h);
#define XRSIM_STRUCT_CASE(name, v) case name: snprintf(buffer, XR_MAX_STRUCTURE_NAME_SIZE, "%s", #name); return XR_SUCCESS;
    switch (value) { XR_LIST_ENUM_XrStructureType(XRSIM_STRUCT_CASE) default: break; }
#undef XRSIM_STRUCT_CASE
    snprintf(buffer, XR_MAX_STRUCTURE_NAME_SIZE, "XR_UNKNOWN_STRUCTURE_TYPE_%d", (int)value);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrStringToPath(XrInstance h, const char *str, XrPath *path) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrStringToPath";
    CHECK_INSTANCE(fn, inst);
    if (!str || !path) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "NULL argument");
    if (str[0] != '/' || strstr(str, "//") || (strlen(str) > 1 && str[strlen(str) - 1] == '/'))
        return fail(XR_ERROR_PATH_FORMAT_INVALID, fn, "malformed path %s", str);
    for (int i = 0; i < inst->path_count; i++)
        if (!strcmp(inst->paths[i], str)) { *path = (XrPath)(i + 1); return XR_SUCCESS; }
    if (inst->path_count == MAX_PATHS) return fail(XR_ERROR_PATH_COUNT_EXCEEDED, fn, "more than %d paths", MAX_PATHS);
    inst->paths[inst->path_count++] = strdup(str);
    *path = (XrPath)inst->path_count;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrPathToString(XrInstance h, XrPath path, uint32_t cap, uint32_t *count, char *buffer) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrPathToString";
    CHECK_INSTANCE(fn, inst);
    if (path == XR_NULL_PATH || path > (XrPath)inst->path_count) return fail(XR_ERROR_PATH_INVALID, fn, "unknown path %llu", (unsigned long long)path);
    const char *s = inst->paths[path - 1];
    TWO_CALL(fn, cap, count, strlen(s) + 1, memcpy(buffer, s, strlen(s) + 1));
}

/* ==== system ==== */
static XrResult XRAPI_CALL xrGetSystem(XrInstance h, const XrSystemGetInfo *info, XrSystemId *id) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrGetSystem";
    CHECK_INSTANCE(fn, inst);
    CHECK_TYPE(fn, info, XR_TYPE_SYSTEM_GET_INFO);
    if (!id) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "systemId output is NULL");
    if (info->formFactor != XR_FORM_FACTOR_HEAD_MOUNTED_DISPLAY)
        return fail(XR_ERROR_FORM_FACTOR_UNSUPPORTED, fn, "form factor %d; xrsim is a head-mounted display", (int)info->formFactor);
    if (inst->no_hmd) return XR_ERROR_FORM_FACTOR_UNAVAILABLE; /* a legitimate answer, not an app error */
    inst->system_got = true;
    *id = SYSTEM_ID;
    return XR_SUCCESS;
}

#define CHECK_SYSTEM(fn, inst, id)                                                     \
    do {                                                                               \
        if ((id) != SYSTEM_ID || !(inst)->system_got)                                  \
            return fail(XR_ERROR_SYSTEM_INVALID, fn, "system id %llu was not returned by xrGetSystem", (unsigned long long)(id)); \
    } while (0)

static XrResult XRAPI_CALL xrGetSystemProperties(XrInstance h, XrSystemId id, XrSystemProperties *props) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrGetSystemProperties";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    CHECK_TYPE(fn, props, XR_TYPE_SYSTEM_PROPERTIES);
    props->systemId = id;
    props->vendorId = 0x5853;
    snprintf(props->systemName, XR_MAX_SYSTEM_NAME_SIZE, "xrsim stereo HMD");
    props->graphicsProperties.maxSwapchainImageWidth = MAX_IMAGE_SIZE;
    props->graphicsProperties.maxSwapchainImageHeight = MAX_IMAGE_SIZE;
    props->graphicsProperties.maxLayerCount = XR_MIN_COMPOSITION_LAYERS_SUPPORTED;
    props->trackingProperties.orientationTracking = XR_TRUE;
    props->trackingProperties.positionTracking = XR_TRUE;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrEnumerateViewConfigurations(XrInstance h, XrSystemId id, uint32_t cap, uint32_t *count, XrViewConfigurationType *types) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrEnumerateViewConfigurations";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    TWO_CALL(fn, cap, count, 1, types[0] = XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO);
}

static XrResult XRAPI_CALL xrGetViewConfigurationProperties(XrInstance h, XrSystemId id, XrViewConfigurationType type, XrViewConfigurationProperties *props) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrGetViewConfigurationProperties";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    CHECK_TYPE(fn, props, XR_TYPE_VIEW_CONFIGURATION_PROPERTIES);
    if (type != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO) return fail(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED, fn, "type %d", (int)type);
    props->viewConfigurationType = type;
    props->fovMutable = XR_FALSE;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrEnumerateViewConfigurationViews(XrInstance h, XrSystemId id, XrViewConfigurationType type, uint32_t cap, uint32_t *count, XrViewConfigurationView *views) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrEnumerateViewConfigurationViews";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    if (type != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO) return fail(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED, fn, "type %d", (int)type);
    for (uint32_t i = 0; i < cap && i < 2; i++)
        if (views[i].type != XR_TYPE_VIEW_CONFIGURATION_VIEW) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "views[%u].type is not XR_TYPE_VIEW_CONFIGURATION_VIEW", i);
    TWO_CALL(fn, cap, count, 2, for (int i = 0; i < 2; i++) {
        views[i].recommendedImageRectWidth = inst->width;
        views[i].recommendedImageRectHeight = inst->height;
        views[i].maxImageRectWidth = MAX_IMAGE_SIZE;
        views[i].maxImageRectHeight = MAX_IMAGE_SIZE;
        views[i].recommendedSwapchainSampleCount = 1;
        views[i].maxSwapchainSampleCount = 1;
    });
}

static XrResult XRAPI_CALL xrEnumerateEnvironmentBlendModes(XrInstance h, XrSystemId id, XrViewConfigurationType type, uint32_t cap, uint32_t *count, XrEnvironmentBlendMode *modes) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrEnumerateEnvironmentBlendModes";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    if (type != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO) return fail(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED, fn, "type %d", (int)type);
    TWO_CALL(fn, cap, count, 1, modes[0] = XR_ENVIRONMENT_BLEND_MODE_OPAQUE);
}

static XrResult XRAPI_CALL xrGetOpenGLGraphicsRequirementsKHR(XrInstance h, XrSystemId id, XrGraphicsRequirementsOpenGLKHR *req) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrGetOpenGLGraphicsRequirementsKHR";
    CHECK_INSTANCE(fn, inst);
    CHECK_SYSTEM(fn, inst, id);
    CHECK_TYPE(fn, req, XR_TYPE_GRAPHICS_REQUIREMENTS_OPENGL_KHR);
    req->minApiVersionSupported = XR_MAKE_VERSION(3, 3, 0);
    req->maxApiVersionSupported = XR_MAKE_VERSION(4, 6, 0);
    inst->gl_requirements_queried = true;
    return XR_SUCCESS;
}

/* ==== time ==== */
static XrResult XRAPI_CALL xrConvertTimespecTimeToTimeKHR(XrInstance h, const struct timespec *ts, XrTime *t) {
    Instance *inst = (Instance *)h;
    CHECK_INSTANCE("xrConvertTimespecTimeToTimeKHR", inst);
    if (!ts || !t) return fail(XR_ERROR_VALIDATION_FAILURE, "xrConvertTimespecTimeToTimeKHR", "NULL argument");
    int64_t mono = (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
    /* Virtual time advances with real time between frames, from each frame's start. */
    *t = inst->virtual_time ? inst->last_wait_time + (mono - inst->last_wait_real) : mono;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrConvertTimeToTimespecTimeKHR(XrInstance h, XrTime t, struct timespec *ts) {
    Instance *inst = (Instance *)h;
    CHECK_INSTANCE("xrConvertTimeToTimespecTimeKHR", inst);
    if (!ts) return fail(XR_ERROR_VALIDATION_FAILURE, "xrConvertTimeToTimespecTimeKHR", "NULL argument");
    int64_t mono = inst->virtual_time ? inst->last_wait_real + (t - inst->last_wait_time) : t;
    ts->tv_sec = mono / NS_PER_S;
    ts->tv_nsec = mono % NS_PER_S;
    return XR_SUCCESS;
}

/* ==== session ==== */
static bool load_gl(Session *s, PFNEGLGETPROCADDRESSPROC gpa, const char *get_current_context, char *missing, size_t len) {
#define LOAD(field, name)                                                              \
    do {                                                                               \
        *(void **)&s->gl.field = (void *)gpa(name);                                    \
        if (!s->gl.field) { snprintf(missing, len, "%s", name); return false; }         \
    } while (0)
    LOAD(GenTextures, "glGenTextures");
    LOAD(DeleteTextures, "glDeleteTextures");
    LOAD(BindTexture, "glBindTexture");
    LOAD(TexStorage2D, "glTexStorage2D");
    LOAD(GetIntegerv, "glGetIntegerv");
    LOAD(GetTexImage, "glGetTexImage");
    LOAD(PixelStorei, "glPixelStorei");
    LOAD(BindBuffer, "glBindBuffer");
    LOAD(GetError, "glGetError");
    LOAD(GetCurrentContext, get_current_context);
#undef LOAD
    return true;
}

/* The application's context must be current when the runtime touches its GL objects. */
static XrResult check_context(Session *s, const char *fn) {
    if (s->headless) return XR_SUCCESS;
    void *cur = s->gl.GetCurrentContext();
    if (cur != s->context)
        return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "the %s context of the session binding (%p) is not current (current: %p)", s->glx ? "GLX" : "EGL", s->context, cur);
    return XR_SUCCESS;
}

/* The Xlib binding: GL entry points come from the process's libGL (glXGetProcAddressARB). */
static XrResult bind_glx(Session *s, const XrGraphicsBindingOpenGLXlibKHR *b) {
    const char *fn = "xrCreateSession";
    Instance *inst = s->instance;
    if (!inst->ext_opengl) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "the Xlib binding needs XR_KHR_opengl_enable enabled");
    if (!inst->gl_requirements_queried) return fail(XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING, fn, "xrGetOpenGLGraphicsRequirementsKHR was not called");
    if (!b->xDisplay || !b->glxContext || !b->glxFBConfig || !b->glxDrawable || !b->visualid)
        return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "Xlib binding has a NULL display, context, FB config, drawable or visual id");
    void *libgl = dlopen("libGL.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!libgl) return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "libGL.so.1 is not loaded in the application: no GLX context can be current");
    PFNEGLGETPROCADDRESSPROC gpa = (PFNEGLGETPROCADDRESSPROC)dlsym(libgl, "glXGetProcAddressARB");
    if (!gpa) return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "libGL.so.1 has no glXGetProcAddressARB");
    char missing[64];
    if (!load_gl(s, gpa, "glXGetCurrentContext", missing, sizeof missing))
        return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "glXGetProcAddressARB(\"%s\") returned NULL", missing);
    s->glx = true;
    s->display = b->xDisplay;
    s->context = b->glxContext;
    return check_context(s, fn);
}

static XrResult XRAPI_CALL xrCreateSession(XrInstance h, const XrSessionCreateInfo *info, XrSession *out) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrCreateSession";
    CHECK_INSTANCE(fn, inst);
    CHECK_TYPE(fn, info, XR_TYPE_SESSION_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "session output is NULL");
    CHECK_SYSTEM(fn, inst, info->systemId);
    if (info->createFlags) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "createFlags must be 0");
    if (inst->session) return fail(XR_ERROR_LIMIT_REACHED, fn, "one session at a time");
    const XrBaseInStructure *binding = NULL;
    for (const XrBaseInStructure *n = info->next; n; n = n->next) {
        if (n->type == XR_TYPE_GRAPHICS_BINDING_EGL_MNDX || n->type == XR_TYPE_GRAPHICS_BINDING_OPENGL_XLIB_KHR) {
            if (binding) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "more than one graphics binding");
            binding = n;
        } else if (n->type >= XR_TYPE_GRAPHICS_BINDING_OPENGL_WIN32_KHR && n->type <= XR_TYPE_GRAPHICS_BINDING_OPENGL_WAYLAND_KHR) {
            return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "graphics binding type %d is not supported; xrsim takes XR_MNDX_egl_enable or Xlib", (int)n->type);
        }
    }
    Session *s = calloc(1, sizeof *s);
    s->instance = inst;
    if (!binding) {
        if (!inst->ext_headless) { free(s); return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "no graphics binding and XR_MND_headless not enabled"); }
        s->headless = true;
    } else if (binding->type == XR_TYPE_GRAPHICS_BINDING_OPENGL_XLIB_KHR) {
        XrResult r = bind_glx(s, (const XrGraphicsBindingOpenGLXlibKHR *)binding);
        if (XR_FAILED(r)) { free(s); return r; }
    } else {
        if (!inst->ext_egl || !inst->ext_opengl) { free(s); return fail(XR_ERROR_VALIDATION_FAILURE, fn, "EGL binding needs XR_KHR_opengl_enable and XR_MNDX_egl_enable enabled"); }
        if (!inst->gl_requirements_queried) { free(s); return fail(XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING, fn, "xrGetOpenGLGraphicsRequirementsKHR was not called"); }
        const XrGraphicsBindingEGLMNDX *egl = (const XrGraphicsBindingEGLMNDX *)binding;
        if (!egl->getProcAddress || !egl->display || !egl->context || !egl->config) { free(s); return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "EGL binding has a NULL getProcAddress, display, config or context"); }
        char missing[64];
        if (!load_gl(s, egl->getProcAddress, "eglGetCurrentContext", missing, sizeof missing)) { free(s); return fail(XR_ERROR_GRAPHICS_DEVICE_INVALID, fn, "getProcAddress(\"%s\") returned NULL", missing); }
        s->display = egl->display;
        s->context = egl->context;
        XrResult r = check_context(s, fn);
        if (XR_FAILED(r)) { free(s); return r; }
    }
    s->magic = MAGIC_SESSION;
    s->state = XR_SESSION_STATE_UNKNOWN;
    s->vsync = -1;
    inst->session = s;
    *out = (XrSession)s;
    set_state(s, XR_SESSION_STATE_IDLE);
    set_state(s, XR_SESSION_STATE_READY);
    note("session created (%s)", s->headless ? "headless" : "EGL");
    return XR_SUCCESS;
}

static void destroy_session_objects(Session *s) {
    while (s->swapchains) {
        Swapchain *sc = s->swapchains;
        s->swapchains = sc->next_in_list;
        if (!s->headless) s->gl.DeleteTextures(IMAGES_PER_SWAPCHAIN, sc->images);
        sc->magic = 0;
        free(sc);
    }
    while (s->spaces) {
        Space *sp = s->spaces;
        s->spaces = sp->next_in_list;
        sp->magic = 0;
        free(sp);
    }
}

static XrResult XRAPI_CALL xrDestroySession(XrSession h) {
    Session *s = (Session *)h;
    CHECK_SESSION("xrDestroySession", s);
    if (s->swapchains) {
        XrResult r = check_context(s, "xrDestroySession");
        if (XR_FAILED(r)) return r;
    }
    destroy_session_objects(s);
    /* drop queued events of this session */
    Instance *inst = s->instance;
    int kept = 0;
    XrEventDataBuffer tmp[MAX_EVENTS];
    for (int i = 0; i < inst->event_count; i++) {
        XrEventDataBuffer *e = &inst->events[(inst->event_head + i) % MAX_EVENTS];
        if (e->type == XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED && ((XrEventDataSessionStateChanged *)e)->session == h) continue;
        tmp[kept++] = *e;
    }
    memcpy(inst->events, tmp, kept * sizeof tmp[0]);
    inst->event_head = 0;
    inst->event_count = kept;
    s->magic = 0;
    inst->session = NULL;
    free(s);
    note("session destroyed");
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrBeginSession(XrSession h, const XrSessionBeginInfo *info) {
    Session *s = (Session *)h;
    const char *fn = "xrBeginSession";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_SESSION_BEGIN_INFO);
    if (s->loss_pending) return XR_SESSION_LOSS_PENDING;
    if (s->running) return fail(XR_ERROR_SESSION_RUNNING, fn, "session already running");
    if (s->state != XR_SESSION_STATE_READY) return fail(XR_ERROR_SESSION_NOT_READY, fn, "state is %s, not READY", state_name(s->state));
    if (info->primaryViewConfigurationType != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO)
        return fail(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED, fn, "view configuration %d", (int)info->primaryViewConfigurationType);
    s->running = true;
    s->view_config = info->primaryViewConfigurationType;
    s->waits_pending = 0;
    s->frame_begun = false;
    s->predicted_count = 0;
    s->sessions_frames = 0;
    note("session begun");
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrEndSession(XrSession h) {
    Session *s = (Session *)h;
    const char *fn = "xrEndSession";
    CHECK_SESSION(fn, s);
    if (s->loss_pending) return XR_SESSION_LOSS_PENDING;
    if (!s->running) return fail(XR_ERROR_SESSION_NOT_RUNNING, fn, "session is not running");
    if (s->state != XR_SESSION_STATE_STOPPING) return fail(XR_ERROR_SESSION_NOT_STOPPING, fn, "state is %s, not STOPPING", state_name(s->state));
    s->running = false;
    set_state(s, XR_SESSION_STATE_IDLE);
    if (s->exit_requested && !s->instance->never_exit) set_state(s, XR_SESSION_STATE_EXITING);
    else if (s->restart_after_stop) { s->restart_after_stop = false; set_state(s, XR_SESSION_STATE_READY); }
    note("session ended");
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrRequestExitSession(XrSession h) {
    Session *s = (Session *)h;
    const char *fn = "xrRequestExitSession";
    CHECK_SESSION(fn, s);
    if (s->loss_pending) return XR_SESSION_LOSS_PENDING;
    if (!s->running) return fail(XR_ERROR_SESSION_NOT_RUNNING, fn, "session is not running");
    s->exit_requested = true;
    s->restart_after_stop = false;
    stop_session(s);
    return XR_SUCCESS;
}

/* ==== spaces ==== */
static XrResult XRAPI_CALL xrEnumerateReferenceSpaces(XrSession h, uint32_t cap, uint32_t *count, XrReferenceSpaceType *types) {
    Session *s = (Session *)h;
    CHECK_SESSION("xrEnumerateReferenceSpaces", s);
    uint32_t n = s->instance->no_stage ? 2 : 3;
    TWO_CALL("xrEnumerateReferenceSpaces", cap, count, n, {
        types[0] = XR_REFERENCE_SPACE_TYPE_VIEW;
        types[1] = XR_REFERENCE_SPACE_TYPE_LOCAL;
        if (n == 3) types[2] = XR_REFERENCE_SPACE_TYPE_STAGE;
    });
}

static XrResult XRAPI_CALL xrCreateReferenceSpace(XrSession h, const XrReferenceSpaceCreateInfo *info, XrSpace *out) {
    Session *s = (Session *)h;
    const char *fn = "xrCreateReferenceSpace";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_REFERENCE_SPACE_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "space output is NULL");
    XrReferenceSpaceType t = info->referenceSpaceType;
    if (t != XR_REFERENCE_SPACE_TYPE_VIEW && t != XR_REFERENCE_SPACE_TYPE_LOCAL && !(t == XR_REFERENCE_SPACE_TYPE_STAGE && !s->instance->no_stage))
        return fail(XR_ERROR_REFERENCE_SPACE_UNSUPPORTED, fn, "reference space type %d", (int)t);
    if (!pose_valid(info->poseInReferenceSpace)) return fail(XR_ERROR_POSE_INVALID, fn, "poseInReferenceSpace has a non-unit orientation");
    Space *sp = calloc(1, sizeof *sp);
    sp->magic = MAGIC_SPACE;
    sp->session = s;
    sp->type = t;
    sp->offset = from_xr(info->poseInReferenceSpace);
    sp->next_in_list = s->spaces;
    s->spaces = sp;
    *out = (XrSpace)sp;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrGetReferenceSpaceBoundsRect(XrSession h, XrReferenceSpaceType t, XrExtent2Df *bounds) {
    Session *s = (Session *)h;
    CHECK_SESSION("xrGetReferenceSpaceBoundsRect", s);
    if (!bounds) return fail(XR_ERROR_VALIDATION_FAILURE, "xrGetReferenceSpaceBoundsRect", "bounds is NULL");
    if (t == XR_REFERENCE_SPACE_TYPE_STAGE && !s->instance->no_stage) { *bounds = (XrExtent2Df){3.0f, 3.0f}; return XR_SUCCESS; }
    *bounds = (XrExtent2Df){0, 0};
    return XR_SPACE_BOUNDS_UNAVAILABLE;
}

/* Where a space's origin is, in STAGE coordinates, at time t (ns). */
static Pose space_in_stage(Instance *inst, const Space *sp, XrTime t) {
    Pose base = {{0, 0, 0, 1}, {0, 0, 0}};
    if (sp->type == XR_REFERENCE_SPACE_TYPE_VIEW) base = pose_at(&inst->devices[DEV_HEAD], (double)(t - inst->t0) / NS_PER_S);
    else if (sp->type == XR_REFERENCE_SPACE_TYPE_LOCAL) base.p.y = inst->devices[DEV_HEAD].fixed.p.y;
    else if (sp->type == SPACE_ACTION) base = pose_at(&inst->devices[sp->hand + 1], (double)(t - inst->t0) / NS_PER_S);
    return pmul(base, sp->offset);
}

/* An action space is tracked only while its action is active: bound, and synced while FOCUSED. */
static bool space_tracked(const Space *sp) {
    return sp->type != SPACE_ACTION || sp->action->active[sp->hand];
}

static XrResult XRAPI_CALL xrLocateSpace(XrSpace hs, XrSpace hb, XrTime t, XrSpaceLocation *loc) {
    const char *fn = "xrLocateSpace";
    Space *sp = find_any_space(hs), *base = find_any_space(hb);
    if (!sp || !base) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSpace");
    if (sp->session != base->session) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "spaces of different sessions");
    CHECK_TYPE(fn, loc, XR_TYPE_SPACE_LOCATION);
    if (t <= 0) return fail(XR_ERROR_TIME_INVALID, fn, "time %lld", (long long)t);
    Instance *inst = sp->session->instance;
    if (!space_tracked(sp) || !space_tracked(base)) {
        loc->pose = to_xr((Pose){{0, 0, 0, 1}, {0, 0, 0}});
        loc->locationFlags = 0;
        return sp->session->loss_pending ? XR_SESSION_LOSS_PENDING : XR_SUCCESS;
    }
    Pose rel = pmul(pinv(space_in_stage(inst, base, t)), space_in_stage(inst, sp, t));
    loc->pose = to_xr(rel);
    loc->locationFlags = XR_SPACE_LOCATION_ORIENTATION_VALID_BIT | XR_SPACE_LOCATION_POSITION_VALID_BIT |
                         XR_SPACE_LOCATION_ORIENTATION_TRACKED_BIT | XR_SPACE_LOCATION_POSITION_TRACKED_BIT;
    return sp->session->loss_pending ? XR_SESSION_LOSS_PENDING : XR_SUCCESS;
}

static XrResult XRAPI_CALL xrDestroySpace(XrSpace h) {
    Space *sp = find_any_space(h);
    if (!sp) return fail(XR_ERROR_HANDLE_INVALID, "xrDestroySpace", "invalid XrSpace %p", (void *)h);
    Space **pp = &sp->session->spaces;
    while (*pp != sp) pp = &(*pp)->next_in_list;
    *pp = sp->next_in_list;
    sp->magic = 0;
    free(sp);
    return XR_SUCCESS;
}

/* ==== views ==== */
static XrResult XRAPI_CALL xrLocateViews(XrSession h, const XrViewLocateInfo *info, XrViewState *state, uint32_t cap, uint32_t *count, XrView *views) {
    Session *s = (Session *)h;
    const char *fn = "xrLocateViews";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_VIEW_LOCATE_INFO);
    CHECK_TYPE(fn, state, XR_TYPE_VIEW_STATE);
    if (info->viewConfigurationType != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO)
        return fail(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED, fn, "view configuration %d", (int)info->viewConfigurationType);
    if (info->displayTime <= 0) return fail(XR_ERROR_TIME_INVALID, fn, "displayTime %lld", (long long)info->displayTime);
    Space *sp = find_space(s, info->space);
    if (!sp) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid space");
    for (uint32_t i = 0; i < cap && i < 2; i++)
        if (views[i].type != XR_TYPE_VIEW) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "views[%u].type is not XR_TYPE_VIEW", i);
    Instance *inst = s->instance;
    Pose head = pose_at(&inst->devices[DEV_HEAD], (double)(info->displayTime - inst->t0) / NS_PER_S);
    Pose to_space = pinv(space_in_stage(inst, sp, info->displayTime));
    if (!count) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "viewCountOutput is NULL");
    *count = 2;
    if (cap == 0) return XR_SUCCESS;
    if (cap < 2) return fail(XR_ERROR_SIZE_INSUFFICIENT, fn, "capacity %u < 2", cap);
    for (int i = 0; i < 2; i++) {
        Pose eye = {{0, 0, 0, 1}, {(i ? 0.5 : -0.5) * inst->ipd, 0, 0}};
        views[i].pose = to_xr(pmul(to_space, pmul(head, eye)));
        views[i].fov = inst->fov[i];
    }
    state->viewStateFlags = XR_VIEW_STATE_ORIENTATION_VALID_BIT | XR_VIEW_STATE_POSITION_VALID_BIT |
                            XR_VIEW_STATE_ORIENTATION_TRACKED_BIT | XR_VIEW_STATE_POSITION_TRACKED_BIT;
    return s->loss_pending ? XR_SESSION_LOSS_PENDING : XR_SUCCESS;
}

/* ==== swapchains ==== */
static XrResult XRAPI_CALL xrEnumerateSwapchainFormats(XrSession h, uint32_t cap, uint32_t *count, int64_t *formats) {
    Session *s = (Session *)h;
    CHECK_SESSION("xrEnumerateSwapchainFormats", s);
    const int64_t *offered = s->instance->unorm_only ? FORMATS + 1 : FORMATS;
    uint32_t n = s->headless ? 0 : s->instance->unorm_only ? 1 : 2;
    TWO_CALL("xrEnumerateSwapchainFormats", cap, count, n, memcpy(formats, offered, n * sizeof formats[0]));
}

static XrResult XRAPI_CALL xrCreateSwapchain(XrSession h, const XrSwapchainCreateInfo *info, XrSwapchain *out) {
    Session *s = (Session *)h;
    const char *fn = "xrCreateSwapchain";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_SWAPCHAIN_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "swapchain output is NULL");
    if (s->headless) return fail(XR_ERROR_FEATURE_UNSUPPORTED, fn, "a headless session has no swapchains");
    if ((info->format != GL_SRGB8_ALPHA8 || s->instance->unorm_only) && info->format != GL_RGBA8) return fail(XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED, fn, "format 0x%llx", (long long)info->format);
    if (info->createFlags) return fail(XR_ERROR_FEATURE_UNSUPPORTED, fn, "createFlags 0x%llx (protected/static) unsupported", (long long)info->createFlags);
    if (!(info->usageFlags & XR_SWAPCHAIN_USAGE_COLOR_ATTACHMENT_BIT)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "a color format needs XR_SWAPCHAIN_USAGE_COLOR_ATTACHMENT_BIT");
    if (info->sampleCount != 1) return fail(XR_ERROR_FEATURE_UNSUPPORTED, fn, "sampleCount %u (max 1)", info->sampleCount);
    if (info->faceCount != 1 || info->arraySize != 1 || info->mipCount != 1) return fail(XR_ERROR_FEATURE_UNSUPPORTED, fn, "faceCount/arraySize/mipCount must be 1");
    if (!info->width || !info->height || info->width > MAX_IMAGE_SIZE || info->height > MAX_IMAGE_SIZE) return fail(XR_ERROR_SIZE_INSUFFICIENT, fn, "size %ux%u outside 1..%d", info->width, info->height, MAX_IMAGE_SIZE);
    XrResult r = check_context(s, fn);
    if (XR_FAILED(r)) return r;
    Swapchain *sc = calloc(1, sizeof *sc);
    sc->magic = MAGIC_SWAPCHAIN;
    sc->session = s;
    sc->width = info->width;
    sc->height = info->height;
    sc->format = info->format;
    sc->last_released = -1;
    GLint prev = 0;
    s->gl.GetIntegerv(GL_TEXTURE_BINDING_2D, &prev);
    s->gl.GenTextures(IMAGES_PER_SWAPCHAIN, sc->images);
    for (int i = 0; i < IMAGES_PER_SWAPCHAIN; i++) {
        s->gl.BindTexture(GL_TEXTURE_2D, sc->images[i]);
        s->gl.TexStorage2D(GL_TEXTURE_2D, 1, (GLenum)info->format, (GLsizei)info->width, (GLsizei)info->height);
    }
    s->gl.BindTexture(GL_TEXTURE_2D, (GLuint)prev);
    GLenum e = s->gl.GetError();
    if (e != GL_NO_ERROR) {
        s->gl.DeleteTextures(IMAGES_PER_SWAPCHAIN, sc->images);
        free(sc);
        return fail(XR_ERROR_RUNTIME_FAILURE, fn, "GL error 0x%x creating textures", e);
    }
    sc->next_in_list = s->swapchains;
    s->swapchains = sc;
    *out = (XrSwapchain)sc;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrDestroySwapchain(XrSwapchain h) {
    Swapchain *sc = find_any_swapchain(h);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, "xrDestroySwapchain", "invalid XrSwapchain %p", (void *)h);
    Session *s = sc->session;
    XrResult r = check_context(s, "xrDestroySwapchain");
    if (XR_FAILED(r)) return r;
    s->gl.DeleteTextures(IMAGES_PER_SWAPCHAIN, sc->images);
    Swapchain **pp = &s->swapchains;
    while (*pp != sc) pp = &(*pp)->next_in_list;
    *pp = sc->next_in_list;
    sc->magic = 0;
    free(sc);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrEnumerateSwapchainImages(XrSwapchain h, uint32_t cap, uint32_t *count, XrSwapchainImageBaseHeader *images) {
    const char *fn = "xrEnumerateSwapchainImages";
    Swapchain *sc = find_any_swapchain(h);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSwapchain %p", (void *)h);
    XrSwapchainImageOpenGLKHR *gl = (XrSwapchainImageOpenGLKHR *)images;
    for (uint32_t i = 0; i < cap && i < IMAGES_PER_SWAPCHAIN; i++)
        if (gl[i].type != XR_TYPE_SWAPCHAIN_IMAGE_OPENGL_KHR) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "images[%u].type is not XR_TYPE_SWAPCHAIN_IMAGE_OPENGL_KHR", i);
    TWO_CALL(fn, cap, count, IMAGES_PER_SWAPCHAIN, for (int i = 0; i < IMAGES_PER_SWAPCHAIN; i++) gl[i].image = sc->images[i]);
}

static XrResult XRAPI_CALL xrAcquireSwapchainImage(XrSwapchain h, const XrSwapchainImageAcquireInfo *info, uint32_t *index) {
    const char *fn = "xrAcquireSwapchainImage";
    Swapchain *sc = find_any_swapchain(h);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSwapchain %p", (void *)h);
    if (info) CHECK_TYPE(fn, info, XR_TYPE_SWAPCHAIN_IMAGE_ACQUIRE_INFO);
    if (!index) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "index output is NULL");
    if (sc->acquired == IMAGES_PER_SWAPCHAIN) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "all %d images are acquired and not released", IMAGES_PER_SWAPCHAIN);
    XrResult r = check_context(sc->session, fn);
    if (XR_FAILED(r)) return r;
    if (sc->acquired == 0) sc->head = sc->next_acquire;
    *index = sc->next_acquire;
    sc->next_acquire = (sc->next_acquire + 1) % IMAGES_PER_SWAPCHAIN;
    sc->acquired++;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrWaitSwapchainImage(XrSwapchain h, const XrSwapchainImageWaitInfo *info) {
    const char *fn = "xrWaitSwapchainImage";
    Swapchain *sc = find_any_swapchain(h);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSwapchain %p", (void *)h);
    CHECK_TYPE(fn, info, XR_TYPE_SWAPCHAIN_IMAGE_WAIT_INFO);
    if (sc->waited >= sc->acquired) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "no acquired image left to wait on");
    if (sc->waited == 1) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "the previously waited image was not released");
    sc->waited++;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrReleaseSwapchainImage(XrSwapchain h, const XrSwapchainImageReleaseInfo *info) {
    const char *fn = "xrReleaseSwapchainImage";
    Swapchain *sc = find_any_swapchain(h);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrSwapchain %p", (void *)h);
    if (info) CHECK_TYPE(fn, info, XR_TYPE_SWAPCHAIN_IMAGE_RELEASE_INFO);
    if (!sc->waited) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "no image was waited on");
    XrResult r = check_context(sc->session, fn);
    if (XR_FAILED(r)) return r;
    sc->last_released = (int32_t)sc->head;
    sc->head = (sc->head + 1) % IMAGES_PER_SWAPCHAIN;
    sc->waited--;
    sc->acquired--;
    return XR_SUCCESS;
}

/* ==== frames ==== */
static XrResult XRAPI_CALL xrWaitFrame(XrSession h, const XrFrameWaitInfo *info, XrFrameState *state) {
    Session *s = (Session *)h;
    const char *fn = "xrWaitFrame";
    CHECK_SESSION(fn, s);
    if (info) CHECK_TYPE(fn, info, XR_TYPE_FRAME_WAIT_INFO);
    CHECK_TYPE(fn, state, XR_TYPE_FRAME_STATE);
    if (!s->running) return fail(XR_ERROR_SESSION_NOT_RUNNING, fn, "session is not running (state %s)", state_name(s->state));
    if (s->waits_pending) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "xrWaitFrame called again before xrBeginFrame (a single-threaded app would block forever)");
    Instance *inst = s->instance;
    int64_t k;
    if (inst->virtual_time) {
        k = s->vsync + 1;
    } else {
        int64_t now = monotonic_ns();
        k = (now - inst->t0 + inst->period - 1) / inst->period;
        if (k <= s->vsync) k = s->vsync + 1;
        int64_t target = inst->t0 + k * inst->period;
        while ((now = monotonic_ns()) < target) {
            struct timespec ts = {0, (long)(target - now)};
            nanosleep(&ts, NULL);
        }
    }
    s->vsync = k;
    XrTime start = inst->t0 + k * inst->period;
    inst->last_wait_real = monotonic_ns();
    inst->last_wait_time = start;
    state->predictedDisplayTime = start + 2 * inst->period;
    state->predictedDisplayPeriod = inst->period;
    state->shouldRender = s->state == XR_SESSION_STATE_VISIBLE || s->state == XR_SESSION_STATE_FOCUSED;
    if (s->predicted_count == MAX_PREDICTED) {
        memmove(s->predicted, s->predicted + 1, (MAX_PREDICTED - 1) * sizeof s->predicted[0]);
        s->predicted_count--;
    }
    s->predicted[s->predicted_count++] = state->predictedDisplayTime;
    s->waits_pending++;
    inst->frames_waited++;
    return s->loss_pending ? XR_SESSION_LOSS_PENDING : XR_SUCCESS;
}

static XrResult XRAPI_CALL xrBeginFrame(XrSession h, const XrFrameBeginInfo *info) {
    Session *s = (Session *)h;
    const char *fn = "xrBeginFrame";
    CHECK_SESSION(fn, s);
    if (info) CHECK_TYPE(fn, info, XR_TYPE_FRAME_BEGIN_INFO);
    if (!s->running) return fail(XR_ERROR_SESSION_NOT_RUNNING, fn, "session is not running");
    if (!s->waits_pending) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "xrBeginFrame without a preceding xrWaitFrame");
    s->waits_pending--;
    s->frame_time = s->predicted[s->predicted_count - 1];
    bool discarded = s->frame_begun;
    s->frame_begun = true;
    if (s->loss_pending) return XR_SESSION_LOSS_PENDING;
    return discarded ? XR_FRAME_DISCARDED : XR_SUCCESS;
}

static void dump_view(Session *s, const XrCompositionLayerProjectionView *v, int eye) {
    Instance *inst = s->instance;
    Swapchain *sc = find_swapchain(s, v->subImage.swapchain);
    uint32_t w = sc->width, h = sc->height;
    unsigned char *rgba = malloc((size_t)w * h * 4);
    GLint prev_tex = 0, prev_pack = 0, prev_align = 0, prev_row = 0;
    s->gl.GetIntegerv(GL_TEXTURE_BINDING_2D, &prev_tex);
    s->gl.GetIntegerv(GL_PIXEL_PACK_BUFFER_BINDING, &prev_pack);
    s->gl.GetIntegerv(GL_PACK_ALIGNMENT, &prev_align);
    s->gl.GetIntegerv(GL_PACK_ROW_LENGTH, &prev_row);
    s->gl.BindBuffer(GL_PIXEL_PACK_BUFFER, 0);
    s->gl.PixelStorei(GL_PACK_ALIGNMENT, 1);
    s->gl.PixelStorei(GL_PACK_ROW_LENGTH, 0);
    s->gl.BindTexture(GL_TEXTURE_2D, sc->images[sc->last_released]);
    s->gl.GetTexImage(GL_TEXTURE_2D, 0, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
    s->gl.BindTexture(GL_TEXTURE_2D, (GLuint)prev_tex);
    s->gl.BindBuffer(GL_PIXEL_PACK_BUFFER, (GLuint)prev_pack);
    s->gl.PixelStorei(GL_PACK_ALIGNMENT, prev_align);
    s->gl.PixelStorei(GL_PACK_ROW_LENGTH, prev_row);
    GLenum e = s->gl.GetError();
    if (e != GL_NO_ERROR) { fail(XR_ERROR_RUNTIME_FAILURE, "xrEndFrame", "GL error 0x%x reading back eye %d", e, eye); free(rgba); return; }
    const XrRect2Di *r = &v->subImage.imageRect;
    char name[64], path[640];
    snprintf(name, sizeof name, "frame_%06ld_eye%d.ppm", inst->frames_ended - 1, eye);
    snprintf(path, sizeof path, "%s/%s", inst->dump_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { fail(XR_ERROR_RUNTIME_FAILURE, "xrEndFrame", "cannot write %s: %s", path, strerror(errno)); free(rgba); return; }
    fprintf(f, "P6\n%d %d\n255\n", r->extent.width, r->extent.height);
    /* GL rows run bottom-up: write the rect's top row first */
    for (int y = r->offset.y + r->extent.height - 1; y >= r->offset.y; y--)
        for (int x = r->offset.x; x < r->offset.x + r->extent.width; x++) fwrite(rgba + ((size_t)y * w + x) * 4, 1, 3, f);
    fclose(f);
    free(rgba);
    const XrPosef *p = &v->pose;
    fprintf(inst->views_csv, "%ld,%d,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%d,%d,%s\n", inst->frames_ended - 1, eye,
            (long long)s->frame_time, p->position.x, p->position.y, p->position.z, p->orientation.x, p->orientation.y,
            p->orientation.z, p->orientation.w, v->fov.angleLeft, v->fov.angleRight, v->fov.angleUp, v->fov.angleDown,
            r->extent.width, r->extent.height, name);
    fflush(inst->views_csv);
}

static XrResult check_sub_image(Session *s, const XrSwapchainSubImage *si, const char *what) {
    const char *fn = "xrEndFrame";
    Swapchain *sc = find_swapchain(s, si->swapchain);
    if (!sc) return fail(XR_ERROR_HANDLE_INVALID, fn, "%s: invalid swapchain %p", what, (void *)si->swapchain);
    if (sc->last_released < 0) return fail(XR_ERROR_LAYER_INVALID, fn, "%s: swapchain has no released image", what);
    if (sc->acquired) return fail(XR_ERROR_LAYER_INVALID, fn, "%s: swapchain has an acquired image not released", what);
    const XrRect2Di *r = &si->imageRect;
    if (r->offset.x < 0 || r->offset.y < 0 || r->extent.width <= 0 || r->extent.height <= 0 ||
        (uint32_t)(r->offset.x + r->extent.width) > sc->width || (uint32_t)(r->offset.y + r->extent.height) > sc->height)
        return fail(XR_ERROR_SWAPCHAIN_RECT_INVALID, fn, "%s: imageRect (%d,%d %dx%d) outside the %ux%u image", what, r->offset.x,
                    r->offset.y, r->extent.width, r->extent.height, sc->width, sc->height);
    if (si->imageArrayIndex != 0) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "%s: imageArrayIndex %u >= arraySize 1", what, si->imageArrayIndex);
    return XR_SUCCESS;
}

static XrResult check_layer(Session *s, const XrCompositionLayerBaseHeader *layer, uint32_t i) {
    const char *fn = "xrEndFrame";
    char what[96];
    if (!layer) return fail(XR_ERROR_LAYER_INVALID, fn, "layers[%u] is NULL", i);
    const XrCompositionLayerFlags known = XR_COMPOSITION_LAYER_CORRECT_CHROMATIC_ABERRATION_BIT |
                                          XR_COMPOSITION_LAYER_BLEND_TEXTURE_SOURCE_ALPHA_BIT |
                                          XR_COMPOSITION_LAYER_UNPREMULTIPLIED_ALPHA_BIT;
    if (layer->layerFlags & ~known) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "layers[%u]: unknown layerFlags 0x%llx", i, (unsigned long long)layer->layerFlags);
    if (!find_space(s, layer->space)) return fail(XR_ERROR_HANDLE_INVALID, fn, "layers[%u]: invalid space", i);
    if (layer->type == XR_TYPE_COMPOSITION_LAYER_PROJECTION) {
        const XrCompositionLayerProjection *p = (const XrCompositionLayerProjection *)layer;
        if (p->viewCount != 2 || !p->views) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "layers[%u]: projection layer needs 2 views for primary stereo, got %u", i, p->viewCount);
        for (uint32_t v = 0; v < 2; v++) {
            const XrCompositionLayerProjectionView *pv = &p->views[v];
            snprintf(what, sizeof what, "layers[%u].views[%u]", i, v);
            if (pv->type != XR_TYPE_COMPOSITION_LAYER_PROJECTION_VIEW) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "%s.type is not XR_TYPE_COMPOSITION_LAYER_PROJECTION_VIEW", what);
            if (!pose_valid(pv->pose)) return fail(XR_ERROR_POSE_INVALID, fn, "%s.pose is not a valid pose", what);
            const XrFovf *f = &pv->fov;
            if (!(f->angleLeft < f->angleRight && f->angleDown < f->angleUp) || fabsf(f->angleLeft) >= 1.5708f ||
                fabsf(f->angleRight) >= 1.5708f || fabsf(f->angleUp) >= 1.5708f || fabsf(f->angleDown) >= 1.5708f)
                return fail(XR_ERROR_VALIDATION_FAILURE, fn, "%s.fov is degenerate (%g %g %g %g)", what, f->angleLeft, f->angleRight, f->angleUp, f->angleDown);
            XrResult r = check_sub_image(s, &pv->subImage, what);
            if (XR_FAILED(r)) return r;
        }
        if (p->views[0].subImage.swapchain == p->views[1].subImage.swapchain &&
            !memcmp(&p->views[0].subImage.imageRect, &p->views[1].subImage.imageRect, sizeof(XrRect2Di)))
            return fail(XR_ERROR_LAYER_INVALID, fn, "layers[%u]: both views use the same image rect", i);
        return XR_SUCCESS;
    }
    if (layer->type == XR_TYPE_COMPOSITION_LAYER_QUAD) {
        const XrCompositionLayerQuad *q = (const XrCompositionLayerQuad *)layer;
        snprintf(what, sizeof what, "layers[%u]", i);
        if (q->eyeVisibility > XR_EYE_VISIBILITY_RIGHT) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "%s.eyeVisibility %d", what, (int)q->eyeVisibility);
        if (!pose_valid(q->pose)) return fail(XR_ERROR_POSE_INVALID, fn, "%s.pose is not a valid pose", what);
        if (!(q->size.width > 0 && q->size.height > 0)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "%s.size must be positive", what);
        return check_sub_image(s, &q->subImage, what);
    }
    return fail(XR_ERROR_LAYER_INVALID, fn, "layers[%u]: type %d is not a layer type xrsim supports", i, (int)layer->type);
}

static XrResult XRAPI_CALL xrEndFrame(XrSession h, const XrFrameEndInfo *info) {
    Session *s = (Session *)h;
    const char *fn = "xrEndFrame";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_FRAME_END_INFO);
    if (!s->running) return fail(XR_ERROR_SESSION_NOT_RUNNING, fn, "session is not running");
    if (!s->frame_begun) return fail(XR_ERROR_CALL_ORDER_INVALID, fn, "xrEndFrame without xrBeginFrame");
    if (info->displayTime != s->frame_time) {
        bool known = false;
        for (int i = 0; i < s->predicted_count; i++) known |= s->predicted[i] == info->displayTime;
        return fail(XR_ERROR_TIME_INVALID, fn, "displayTime %lld is %s; the begun frame's predicted time is %lld", (long long)info->displayTime,
                    known ? "another frame's predicted time" : "not a time xrWaitFrame predicted", (long long)s->frame_time);
    }
    if (info->environmentBlendMode != XR_ENVIRONMENT_BLEND_MODE_OPAQUE)
        return fail(XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED, fn, "blend mode %d; only OPAQUE", (int)info->environmentBlendMode);
    if (info->layerCount > XR_MIN_COMPOSITION_LAYERS_SUPPORTED) return fail(XR_ERROR_LAYER_LIMIT_EXCEEDED, fn, "%u layers", info->layerCount);
    if (info->layerCount && !info->layers) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "layers is NULL with layerCount %u", info->layerCount);
    XrResult r = check_context(s, fn);
    if (XR_FAILED(r)) return r;
    for (uint32_t i = 0; i < info->layerCount; i++) {
        r = check_layer(s, info->layers[i], i);
        if (XR_FAILED(r)) return r;
    }
    s->frame_begun = false;
    Instance *inst = s->instance;
    inst->frames_ended++;
    s->sessions_frames++;
    inst->layers_submitted += info->layerCount;
    const XrCompositionLayerProjection *proj = NULL;
    for (uint32_t i = 0; i < info->layerCount; i++)
        if (info->layers[i]->type == XR_TYPE_COMPOSITION_LAYER_PROJECTION) proj = (const XrCompositionLayerProjection *)info->layers[i];
    if (proj && inst->dump_dir[0]) {
        if (inst->layered_frames % inst->dump_every == 0) {
            dump_view(s, &proj->views[0], 0);
            dump_view(s, &proj->views[1], 1);
            inst->dumped_frames++;
        }
    }
    if (proj) inst->layered_frames++;
    /* The session becomes visible and focused once the application is producing frames. */
    if (s->state == XR_SESSION_STATE_READY) set_state(s, XR_SESSION_STATE_SYNCHRONIZED);
    else if (s->state == XR_SESSION_STATE_SYNCHRONIZED && !s->exit_requested && !s->restart_after_stop) {
        set_state(s, XR_SESSION_STATE_VISIBLE);
        set_state(s, XR_SESSION_STATE_FOCUSED);
    }
    run_script(inst);
    return s->loss_pending ? XR_SESSION_LOSS_PENDING : XR_SUCCESS;
}

/* ==== actions: pose input for both hands ==== */
static const char *path_text(Instance *inst, XrPath p) {
    return (p >= 1 && p <= (XrPath)inst->path_count) ? inst->paths[p - 1] : NULL;
}

static ActionSet *find_set(Instance *inst, XrActionSet h) {
    for (int i = 0; i < inst->set_count; i++)
        if (inst->sets[i] == (ActionSet *)h && inst->sets[i]->magic == MAGIC_ACTION_SET) return inst->sets[i];
    return NULL;
}

static Action *find_action(Instance *inst, XrAction h) {
    for (int i = 0; i < inst->action_count; i++)
        if (inst->actions[i] == (Action *)h && inst->actions[i]->magic == MAGIC_ACTION) return inst->actions[i];
    return NULL;
}

static bool valid_name(const char *name) {
    if (!name[0]) return false;
    for (const char *c = name; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.')) return false;
    return true;
}

static XrResult XRAPI_CALL xrCreateActionSet(XrInstance h, const XrActionSetCreateInfo *info, XrActionSet *out) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrCreateActionSet";
    CHECK_INSTANCE(fn, inst);
    CHECK_TYPE(fn, info, XR_TYPE_ACTION_SET_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "actionSet output is NULL");
    if (!valid_name(info->actionSetName)) return fail(XR_ERROR_PATH_FORMAT_INVALID, fn, "action set name '%s' is not a well-formed path element", info->actionSetName);
    if (!info->localizedActionSetName[0]) return fail(XR_ERROR_LOCALIZED_NAME_INVALID, fn, "empty localized name");
    for (int i = 0; i < inst->set_count; i++)
        if (!strcmp(inst->sets[i]->name, info->actionSetName)) return fail(XR_ERROR_NAME_DUPLICATED, fn, "action set %s exists", info->actionSetName);
    if (inst->set_count == MAX_ACTION_SETS) return fail(XR_ERROR_LIMIT_REACHED, fn, "more than %d action sets", MAX_ACTION_SETS);
    ActionSet *set = calloc(1, sizeof *set);
    set->magic = MAGIC_ACTION_SET;
    snprintf(set->name, sizeof set->name, "%s", info->actionSetName);
    inst->sets[inst->set_count++] = set;
    *out = (XrActionSet)set;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrDestroyActionSet(XrActionSet h) {
    Instance *inst = g_instance;
    ActionSet *set = inst ? find_set(inst, h) : NULL;
    if (!set) return fail(XR_ERROR_HANDLE_INVALID, "xrDestroyActionSet", "invalid XrActionSet %p", (void *)h);
    for (int i = 0; i < inst->action_count;) { /* its actions go with it */
        if (inst->actions[i]->set == set) { free(inst->actions[i]); inst->actions[i] = inst->actions[--inst->action_count]; }
        else i++;
    }
    for (int i = 0; i < inst->set_count; i++)
        if (inst->sets[i] == set) { inst->sets[i] = inst->sets[--inst->set_count]; break; }
    set->magic = 0;
    free(set);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrCreateAction(XrActionSet hs, const XrActionCreateInfo *info, XrAction *out) {
    Instance *inst = g_instance;
    const char *fn = "xrCreateAction";
    ActionSet *set = inst ? find_set(inst, hs) : NULL;
    if (!set) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid XrActionSet %p", (void *)hs);
    CHECK_TYPE(fn, info, XR_TYPE_ACTION_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "action output is NULL");
    if (set->attached) return fail(XR_ERROR_ACTIONSETS_ALREADY_ATTACHED, fn, "action set %s is attached", set->name);
    if (!valid_name(info->actionName)) return fail(XR_ERROR_PATH_FORMAT_INVALID, fn, "action name '%s' is not a well-formed path element", info->actionName);
    if (info->countSubactionPaths > 2) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "at most the two hands as subaction paths");
    Action tmp = {.magic = MAGIC_ACTION, .set = set, .type = info->actionType, .subaction_count = info->countSubactionPaths};
    snprintf(tmp.name, sizeof tmp.name, "%s", info->actionName);
    for (uint32_t i = 0; i < info->countSubactionPaths; i++) {
        const char *p = path_text(inst, info->subactionPaths[i]);
        if (!p || (strcmp(p, HAND_PATHS[0]) && strcmp(p, HAND_PATHS[1])))
            return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "subaction path %s is not /user/hand/left or right", p ? p : "(invalid)");
        tmp.subaction[i] = info->subactionPaths[i];
    }
    if (inst->action_count == MAX_ACTIONS) return fail(XR_ERROR_LIMIT_REACHED, fn, "more than %d actions", MAX_ACTIONS);
    Action *a = malloc(sizeof *a);
    *a = tmp;
    inst->actions[inst->action_count++] = a;
    *out = (XrAction)a;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrDestroyAction(XrAction h) {
    Instance *inst = g_instance;
    Action *a = inst ? find_action(inst, h) : NULL;
    if (!a) return fail(XR_ERROR_HANDLE_INVALID, "xrDestroyAction", "invalid XrAction %p", (void *)h);
    for (int i = 0; i < inst->action_count; i++)
        if (inst->actions[i] == a) { inst->actions[i] = inst->actions[--inst->action_count]; break; }
    a->magic = 0;
    free(a);
    return XR_SUCCESS;
}

static bool is_vector2_path(const char *input) {
    return !strcmp(input, "/input/thumbstick") || !strcmp(input, "/input/trackpad");
}

/* Whether an action of `type` may be bound to `input` (a float or boolean action binds
 * any value / click / touch / force / axis input; the runtime converts). */
static bool type_fits(XrActionType type, const char *input) {
    bool pose = strstr(input, "/pose") != NULL, haptic = !strcmp(input, "/output/haptic");
    switch (type) {
    case XR_ACTION_TYPE_POSE_INPUT: return pose;
    case XR_ACTION_TYPE_VIBRATION_OUTPUT: return haptic;
    case XR_ACTION_TYPE_VECTOR2F_INPUT: return is_vector2_path(input);
    case XR_ACTION_TYPE_BOOLEAN_INPUT:
    case XR_ACTION_TYPE_FLOAT_INPUT: return !pose && !haptic && !is_vector2_path(input);
    default: return false;
    }
}

static XrResult XRAPI_CALL xrSuggestInteractionProfileBindings(XrInstance h, const XrInteractionProfileSuggestedBinding *info) {
    Instance *inst = (Instance *)h;
    const char *fn = "xrSuggestInteractionProfileBindings";
    CHECK_INSTANCE(fn, inst);
    CHECK_TYPE(fn, info, XR_TYPE_INTERACTION_PROFILE_SUGGESTED_BINDING);
    const char *text = path_text(inst, info->interactionProfile);
    if (!text) return fail(XR_ERROR_PATH_INVALID, fn, "invalid interaction profile path");
    size_t np = strlen(PROFILE_PREFIX);
    int profile = strncmp(text, PROFILE_PREFIX, np) ? -1 : profile_index(text + np);
    if (profile < 0) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "interaction profile %s is not one xrsim knows", text);
    if (PROFILES[profile].extension && !(profile_index("hp/mixed_reality_controller") == profile && inst->ext_hp_controller))
        return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "interaction profile %s needs extension %s, not enabled", text, PROFILES[profile].extension);
    if (!info->countSuggestedBindings || !info->suggestedBindings) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "no bindings");
    static char bound[MAX_ACTIONS][2][BINDING_SIZE];
    memset(bound, 0, sizeof bound);
    for (uint32_t i = 0; i < info->countSuggestedBindings; i++) {
        const XrActionSuggestedBinding *b = &info->suggestedBindings[i];
        Action *a = find_action(inst, b->action);
        if (!a) return fail(XR_ERROR_HANDLE_INVALID, fn, "suggestedBindings[%u].action is invalid", i);
        if (a->set->attached) return fail(XR_ERROR_ACTIONSETS_ALREADY_ATTACHED, fn, "action %s is in an attached set", a->name);
        const char *p = path_text(inst, b->binding);
        int hand = -1;
        const char *input = NULL;
        for (int k = 0; k < 2 && p; k++) {
            size_t n = strlen(HAND_PATHS[k]);
            if (!strncmp(p, HAND_PATHS[k], n) && profile_has(profile, p + n)) { hand = k; input = p + n; }
        }
        if (hand < 0) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "binding %s is not an input of %s", p ? p : "(invalid)", text);
        if (!type_fits(a->type, input)) return fail(XR_ERROR_ACTION_TYPE_MISMATCH, fn, "action %s (type %d) bound to %s", a->name, (int)a->type, p);
        for (int k = 0; k < inst->action_count; k++)
            if (inst->actions[k] == a) snprintf(bound[k][hand], BINDING_SIZE, "%s", input);
    }
    for (int k = 0; k < inst->action_count; k++) /* a later suggestion for a profile replaces the earlier one */
        memcpy(inst->actions[k]->binding[profile], bound[k], sizeof bound[k]);
    inst->suggested[profile] = true;
    note("bindings suggested for %s (%u)", text, info->countSuggestedBindings);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrAttachSessionActionSets(XrSession h, const XrSessionActionSetsAttachInfo *info) {
    Session *s = (Session *)h;
    const char *fn = "xrAttachSessionActionSets";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_SESSION_ACTION_SETS_ATTACH_INFO);
    if (s->actions_attached) return fail(XR_ERROR_ACTIONSETS_ALREADY_ATTACHED, fn, "action sets were already attached to this session");
    for (uint32_t i = 0; i < info->countActionSets; i++) {
        ActionSet *set = find_set(s->instance, info->actionSets[i]);
        if (!set) return fail(XR_ERROR_HANDLE_INVALID, fn, "actionSets[%u] is invalid", i);
        set->attached = true;
    }
    s->actions_attached = true;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrCreateActionSpace(XrSession h, const XrActionSpaceCreateInfo *info, XrSpace *out) {
    Session *s = (Session *)h;
    const char *fn = "xrCreateActionSpace";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_ACTION_SPACE_CREATE_INFO);
    if (!out) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "space output is NULL");
    Action *a = find_action(s->instance, info->action);
    if (!a) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid action");
    if (a->type != XR_ACTION_TYPE_POSE_INPUT) return fail(XR_ERROR_ACTION_TYPE_MISMATCH, fn, "action %s is not a pose action", a->name);
    int hand = -1;
    for (uint32_t i = 0; i < a->subaction_count; i++)
        if (a->subaction[i] == info->subactionPath) hand = !strcmp(path_text(s->instance, info->subactionPath), HAND_PATHS[1]);
    if (hand < 0) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "subactionPath is not one of action %s's subaction paths", a->name);
    if (!pose_valid(info->poseInActionSpace)) return fail(XR_ERROR_POSE_INVALID, fn, "poseInActionSpace has a non-unit orientation");
    Space *sp = calloc(1, sizeof *sp);
    sp->magic = MAGIC_SPACE;
    sp->session = s;
    sp->type = SPACE_ACTION;
    sp->hand = hand;
    sp->action = a;
    sp->offset = from_xr(info->poseInActionSpace);
    sp->next_in_list = s->spaces;
    s->spaces = sp;
    *out = (XrSpace)sp;
    return XR_SUCCESS;
}

/* The profile a hand's actions are bound through: the device's, when the application
 * suggested bindings for it (xrsim does not remap), else none (-1). */
static int current_profile(Instance *inst) {
    int p = inst->device_profile;
    return (p >= 0 && inst->suggested[p]) ? p : -1;
}

static const InputValue *input_value(Instance *inst, int hand, const char *path) {
    for (int i = 0; i < inst->input_count; i++)
        if (inst->inputs[i].hand == hand && !strcmp(inst->inputs[i].path, path)) return &inst->inputs[i];
    return NULL;
}

/* Apply the scripted input rows and profile changes due after frames_ended xrEndFrame calls. */
static void run_input_script(Session *s) {
    Instance *inst = s->instance;
    for (; inst->input_next < inst->input_row_count && inst->input_rows[inst->input_next].frame <= inst->frames_ended; inst->input_next++) {
        const InputRow *r = &inst->input_rows[inst->input_next];
        InputValue *v = (InputValue *)input_value(inst, r->hand, r->path);
        if (!v && inst->input_count < MAX_INPUTS) {
            v = &inst->inputs[inst->input_count++];
            v->hand = r->hand;
            snprintf(v->path, sizeof v->path, "%s", r->path);
        }
        if (v) { v->x = r->x; v->y = r->y; }
    }
    for (int i = 0; i < inst->profile_change_count; i++) {
        ProfileChange *c = &inst->profile_changes[i];
        if (c->done || inst->frames_ended < c->frame) continue;
        c->done = true;
        inst->device_profile = c->profile;
        note("controllers now %s", c->profile >= 0 ? PROFILES[c->profile].name : "none");
        if (s->actions_attached) {
            XrEventDataInteractionProfileChanged ev = {.type = XR_TYPE_EVENT_DATA_INTERACTION_PROFILE_CHANGED, .session = (XrSession)s};
            push_event(inst, &ev, sizeof ev);
        }
    }
}

/* Each action's state per hand from its binding in the current profile. */
static void update_action_states(Session *s, XrTime now) {
    Instance *inst = s->instance;
    int profile = current_profile(inst);
    for (int k = 0; k < inst->action_count; k++) {
        Action *a = inst->actions[k];
        for (int hand = 0; hand < 2; hand++) {
            const char *input = profile >= 0 ? a->binding[profile][hand] : "";
            bool active = s->actions_active && a->set->attached && input[0];
            const InputValue *v = active ? input_value(inst, hand, input) : NULL;
            float x = v ? v->x : 0.0f, y = v ? v->y : 0.0f;
            if (a->type == XR_ACTION_TYPE_BOOLEAN_INPUT) x = x >= 0.5f ? 1.0f : 0.0f;
            a->changed[hand] = active && a->active[hand] && (x != a->x[hand] || y != a->y[hand]);
            if (a->changed[hand]) a->changed_at[hand] = now;
            a->active[hand] = active;
            a->x[hand] = x;
            a->y[hand] = y;
        }
    }
}

static XrResult XRAPI_CALL xrSyncActions(XrSession h, const XrActionsSyncInfo *info) {
    Session *s = (Session *)h;
    const char *fn = "xrSyncActions";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_ACTIONS_SYNC_INFO);
    for (uint32_t i = 0; i < info->countActiveActionSets; i++) {
        ActionSet *set = find_set(s->instance, info->activeActionSets[i].actionSet);
        if (!set) return fail(XR_ERROR_HANDLE_INVALID, fn, "activeActionSets[%u] is invalid", i);
        if (!set->attached) return fail(XR_ERROR_ACTIONSET_NOT_ATTACHED, fn, "action set %s is not attached", set->name);
    }
    if (s->loss_pending) return XR_SESSION_LOSS_PENDING;
    s->actions_active = s->state == XR_SESSION_STATE_FOCUSED && info->countActiveActionSets > 0;
    run_input_script(s);
    update_action_states(s, now_time(s->instance));
    return s->state == XR_SESSION_STATE_FOCUSED ? XR_SUCCESS : XR_SESSION_NOT_FOCUSED;
}

/* The action of a state query, checked (handle, attached, type); its hand in *hand (-1: both). */
static XrResult state_action(Session *s, const char *fn, const XrActionStateGetInfo *info, XrActionType type, Action **out, int *hand) {
    CHECK_TYPE(fn, info, XR_TYPE_ACTION_STATE_GET_INFO);
    Action *a = find_action(s->instance, info->action);
    if (!a) return fail(XR_ERROR_HANDLE_INVALID, fn, "invalid action");
    if (!a->set->attached) return fail(XR_ERROR_ACTIONSET_NOT_ATTACHED, fn, "action set %s is not attached", a->set->name);
    if (a->type != type) return fail(XR_ERROR_ACTION_TYPE_MISMATCH, fn, "action %s has type %d, not %d", a->name, (int)a->type, (int)type);
    *hand = -1;
    if (info->subactionPath != XR_NULL_PATH) {
        for (uint32_t i = 0; i < a->subaction_count; i++)
            if (a->subaction[i] == info->subactionPath) *hand = !strcmp(path_text(s->instance, info->subactionPath), HAND_PATHS[1]);
        if (*hand < 0) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "subactionPath is not one of action %s's subaction paths", a->name);
    }
    *out = a;
    return XR_SUCCESS;
}

/* One hand's state, or for both hands the active hand with the larger value. */
static int state_hand(const Action *a, int hand) {
    if (hand >= 0) return hand;
    if (!a->active[0]) return 1;
    if (!a->active[1]) return 0;
    return fabsf(a->x[1]) + fabsf(a->y[1]) > fabsf(a->x[0]) + fabsf(a->y[0]);
}

#define STATE_GETTER(fname, want_type, state_type, struct_type, fill)                   \
    static XrResult XRAPI_CALL fname(XrSession h, const XrActionStateGetInfo *info, struct_type *state) { \
        Session *sess = (Session *)h;                                                  \
        CHECK_SESSION(#fname, sess);                                                   \
        CHECK_TYPE(#fname, state, state_type);                                         \
        Action *a;                                                                     \
        int hand;                                                                      \
        XrResult r = state_action(sess, #fname, info, want_type, &a, &hand);           \
        if (r != XR_SUCCESS) return r;                                                 \
        int k = state_hand(a, hand);                                                   \
        state->isActive = a->active[k];                                                \
        fill;                                                                          \
        return XR_SUCCESS;                                                             \
    }

STATE_GETTER(xrGetActionStateBoolean, XR_ACTION_TYPE_BOOLEAN_INPUT, XR_TYPE_ACTION_STATE_BOOLEAN, XrActionStateBoolean,
             state->currentState = a->x[k] >= 0.5f; state->changedSinceLastSync = a->changed[k];
             state->lastChangeTime = a->changed_at[k])
STATE_GETTER(xrGetActionStateFloat, XR_ACTION_TYPE_FLOAT_INPUT, XR_TYPE_ACTION_STATE_FLOAT, XrActionStateFloat,
             state->currentState = a->x[k]; state->changedSinceLastSync = a->changed[k];
             state->lastChangeTime = a->changed_at[k])
STATE_GETTER(xrGetActionStateVector2f, XR_ACTION_TYPE_VECTOR2F_INPUT, XR_TYPE_ACTION_STATE_VECTOR2F, XrActionStateVector2f,
             state->currentState.x = a->x[k]; state->currentState.y = a->y[k]; state->changedSinceLastSync = a->changed[k];
             state->lastChangeTime = a->changed_at[k])
STATE_GETTER(xrGetActionStatePose, XR_ACTION_TYPE_POSE_INPUT, XR_TYPE_ACTION_STATE_POSE, XrActionStatePose, (void)0)
#undef STATE_GETTER

/* The session and haptic action of a haptic call, checked; the hand in *hand (-1: both). */
static XrResult haptic_action(XrSession h, const char *fn, const XrHapticActionInfo *info, Session **session, Action **out, int *hand) {
    Session *s = *session = (Session *)h;
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, info, XR_TYPE_HAPTIC_ACTION_INFO);
    XrActionStateGetInfo get = {.type = XR_TYPE_ACTION_STATE_GET_INFO, .action = info->action, .subactionPath = info->subactionPath};
    return state_action(s, fn, &get, XR_ACTION_TYPE_VIBRATION_OUTPUT, out, hand);
}

static XrResult XRAPI_CALL xrApplyHapticFeedback(XrSession h, const XrHapticActionInfo *info, const XrHapticBaseHeader *haptic) {
    Session *s;
    Action *a;
    int hand;
    XrResult r = haptic_action(h, "xrApplyHapticFeedback", info, &s, &a, &hand);
    if (r != XR_SUCCESS) return r;
    const char *fn = "xrApplyHapticFeedback";
    CHECK_TYPE(fn, haptic, XR_TYPE_HAPTIC_VIBRATION);
    const XrHapticVibration *v = (const XrHapticVibration *)haptic;
    if (!(v->amplitude >= 0.0f && v->amplitude <= 1.0f)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "amplitude %g is not in 0..1", v->amplitude);
    if (v->duration <= 0 && v->duration != XR_MIN_HAPTIC_DURATION) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "duration %lld ns", (long long)v->duration);
    if (!(v->frequency >= 0.0f)) return fail(XR_ERROR_VALIDATION_FAILURE, fn, "frequency %g Hz", v->frequency);
    if (s->state != XR_SESSION_STATE_FOCUSED) return XR_SESSION_NOT_FOCUSED;
    for (int k = 0; k < 2; k++) {
        if (hand >= 0 && k != hand) continue;
        if (!a->active[k]) { note("haptic_unbound hand=%s frame=%ld", DEVICE_NAMES[k + 1], s->instance->frames_ended); continue; }
        s->instance->haptics++;
        note("haptic hand=%s amplitude=%.3f duration_ns=%lld frequency=%.1f frame=%ld", DEVICE_NAMES[k + 1],
             v->amplitude, (long long)v->duration, v->frequency, s->instance->frames_ended);
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrStopHapticFeedback(XrSession h, const XrHapticActionInfo *info) {
    Session *s;
    Action *a;
    int hand;
    XrResult r = haptic_action(h, "xrStopHapticFeedback", info, &s, &a, &hand);
    if (r != XR_SUCCESS) return r;
    if (s->state != XR_SESSION_STATE_FOCUSED) return XR_SESSION_NOT_FOCUSED;
    for (int k = 0; k < 2; k++) {
        if (hand >= 0 && k != hand) continue;
        s->instance->haptic_stops++;
        note("haptic_stop hand=%s frame=%ld", DEVICE_NAMES[k + 1], s->instance->frames_ended);
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL xrGetCurrentInteractionProfile(XrSession h, XrPath user, XrInteractionProfileState *state) {
    Session *s = (Session *)h;
    const char *fn = "xrGetCurrentInteractionProfile";
    CHECK_SESSION(fn, s);
    CHECK_TYPE(fn, state, XR_TYPE_INTERACTION_PROFILE_STATE);
    if (!s->actions_attached) return fail(XR_ERROR_ACTIONSET_NOT_ATTACHED, fn, "no action sets attached");
    const char *p = path_text(s->instance, user);
    int hand = p ? (!strcmp(p, HAND_PATHS[0]) ? 0 : !strcmp(p, HAND_PATHS[1]) ? 1 : -1) : -1;
    if (hand < 0) return fail(XR_ERROR_PATH_UNSUPPORTED, fn, "top level path %s", p ? p : "(invalid)");
    state->interactionProfile = XR_NULL_PATH;
    int profile = current_profile(s->instance);
    if (profile < 0) return XR_SUCCESS;
    char full[128];
    snprintf(full, sizeof full, "%s%s", PROFILE_PREFIX, PROFILES[profile].name);
    return xrStringToPath((XrInstance)s->instance, full, &state->interactionProfile);
}

/* ==== dispatch ==== */
static XrResult XRAPI_CALL xrGetInstanceProcAddr(XrInstance h, const char *name, PFN_xrVoidFunction *fn);
typedef struct { const char *name; PFN_xrVoidFunction fn; int ext; } Entry;
enum { EXT_NONE, EXT_OPENGL, EXT_TIMESPEC };
#define E(name, ext) {#name, (PFN_xrVoidFunction)name, ext}
static const Entry ENTRIES[] = {
    E(xrGetInstanceProcAddr, EXT_NONE), E(xrEnumerateApiLayerProperties, EXT_NONE),
    E(xrEnumerateInstanceExtensionProperties, EXT_NONE), E(xrCreateInstance, EXT_NONE),
    E(xrDestroyInstance, EXT_NONE), E(xrGetInstanceProperties, EXT_NONE), E(xrPollEvent, EXT_NONE),
    E(xrResultToString, EXT_NONE), E(xrStructureTypeToString, EXT_NONE), E(xrGetSystem, EXT_NONE),
    E(xrGetSystemProperties, EXT_NONE), E(xrEnumerateEnvironmentBlendModes, EXT_NONE),
    E(xrCreateSession, EXT_NONE), E(xrDestroySession, EXT_NONE), E(xrEnumerateReferenceSpaces, EXT_NONE),
    E(xrCreateReferenceSpace, EXT_NONE), E(xrGetReferenceSpaceBoundsRect, EXT_NONE),
    E(xrLocateSpace, EXT_NONE), E(xrDestroySpace, EXT_NONE), E(xrEnumerateViewConfigurations, EXT_NONE),
    E(xrGetViewConfigurationProperties, EXT_NONE), E(xrEnumerateViewConfigurationViews, EXT_NONE),
    E(xrEnumerateSwapchainFormats, EXT_NONE), E(xrCreateSwapchain, EXT_NONE), E(xrDestroySwapchain, EXT_NONE),
    E(xrEnumerateSwapchainImages, EXT_NONE), E(xrAcquireSwapchainImage, EXT_NONE),
    E(xrWaitSwapchainImage, EXT_NONE), E(xrReleaseSwapchainImage, EXT_NONE), E(xrBeginSession, EXT_NONE),
    E(xrEndSession, EXT_NONE), E(xrRequestExitSession, EXT_NONE), E(xrWaitFrame, EXT_NONE),
    E(xrBeginFrame, EXT_NONE), E(xrEndFrame, EXT_NONE), E(xrLocateViews, EXT_NONE),
    E(xrStringToPath, EXT_NONE), E(xrPathToString, EXT_NONE),
    E(xrCreateActionSet, EXT_NONE), E(xrDestroyActionSet, EXT_NONE), E(xrCreateAction, EXT_NONE),
    E(xrDestroyAction, EXT_NONE), E(xrSuggestInteractionProfileBindings, EXT_NONE),
    E(xrAttachSessionActionSets, EXT_NONE), E(xrCreateActionSpace, EXT_NONE), E(xrSyncActions, EXT_NONE),
    E(xrGetActionStatePose, EXT_NONE), E(xrGetCurrentInteractionProfile, EXT_NONE),
    E(xrGetActionStateBoolean, EXT_NONE), E(xrGetActionStateFloat, EXT_NONE), E(xrGetActionStateVector2f, EXT_NONE),
    E(xrApplyHapticFeedback, EXT_NONE), E(xrStopHapticFeedback, EXT_NONE),
    E(xrGetOpenGLGraphicsRequirementsKHR, EXT_OPENGL),
    E(xrConvertTimespecTimeToTimeKHR, EXT_TIMESPEC), E(xrConvertTimeToTimespecTimeKHR, EXT_TIMESPEC),
};
#undef E

static XrResult XRAPI_CALL xrGetInstanceProcAddr(XrInstance h, const char *name, PFN_xrVoidFunction *fn) {
    if (!name || !fn) return XR_ERROR_VALIDATION_FAILURE;
    *fn = NULL;
    Instance *inst = (Instance *)h;
    if (!inst) {
        if (strcmp(name, "xrEnumerateInstanceExtensionProperties") && strcmp(name, "xrCreateInstance") &&
            strcmp(name, "xrEnumerateApiLayerProperties") && strcmp(name, "xrGetInstanceProcAddr"))
            return XR_ERROR_HANDLE_INVALID;
    } else if (inst != g_instance || inst->magic != MAGIC_INSTANCE) {
        return XR_ERROR_HANDLE_INVALID;
    }
    for (size_t i = 0; i < sizeof ENTRIES / sizeof ENTRIES[0]; i++) {
        if (strcmp(ENTRIES[i].name, name)) continue;
        if (ENTRIES[i].ext == EXT_OPENGL && (!inst || !inst->ext_opengl)) return XR_ERROR_FUNCTION_UNSUPPORTED;
        if (ENTRIES[i].ext == EXT_TIMESPEC && (!inst || !inst->ext_timespec)) return XR_ERROR_FUNCTION_UNSUPPORTED;
        *fn = ENTRIES[i].fn;
        return XR_SUCCESS;
    }
    return XR_ERROR_FUNCTION_UNSUPPORTED; /* other extensions */
}

EXPORT XrResult xrNegotiateLoaderRuntimeInterface(const XrNegotiateLoaderInfo *loader, XrNegotiateRuntimeRequest *req) {
    if (!loader || !req || loader->structType != XR_LOADER_INTERFACE_STRUCT_LOADER_INFO ||
        loader->structSize != sizeof(XrNegotiateLoaderInfo) || req->structType != XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST ||
        req->structSize != sizeof(XrNegotiateRuntimeRequest))
        return XR_ERROR_INITIALIZATION_FAILED;
    if (loader->minInterfaceVersion > 1 || loader->maxInterfaceVersion < 1 ||
        XR_VERSION_MAJOR(loader->minApiVersion) > 1 || XR_VERSION_MAJOR(loader->maxApiVersion) < 1)
        return XR_ERROR_INITIALIZATION_FAILED;
    req->runtimeInterfaceVersion = 1;
    req->runtimeApiVersion = XR_MAKE_VERSION(1, 0, 0);
    req->getInstanceProcAddr = xrGetInstanceProcAddr;
    return XR_SUCCESS;
}
