//! `NativeWaiter`: event-driven wakeups for the sockets of a port.
//! (Over 600 lines: the epoll thread, its wake protocol with JS and their
//! tests are one piece whose invariants are read together.)
//!
//! JS says which events it wants per queue (`arm(queue, READABLE|WRITABLE)`,
//! 0 to stop) and gets `callback(queue, events)` on its own thread when the
//! socket is ready. Interest is *level-triggered and persistent*: while a
//! queue is armed and still ready (JS did not drain the rx ring), the
//! callback comes again on the next event-loop turn, so a consumer that
//! reads a bounded number of bursts per callback interleaves with other
//! I/O instead of starving it. A consumer that cannot take more disarms.
//! Nothing is allocated per wakeup in either backend.
//!
//! Two backends (docs/design.md, "Event-driven wakeups", has the numbers):
//!
//! * `uv` (default): one libuv `uv_poll_t` per queue on Node's own loop, so
//!   the XSK fd sits in the same epoll set as every other fd of the process;
//!   a wakeup is one epoll_wait return on the JS thread. libuv's functions
//!   are looked up in the running process (`dlsym`), not linked.
//! * `thread` (fallback when the process has no libuv, or on request): a
//!   poll(2) thread per waiter on the queue fds plus an eventfd, handing
//!   ready events to JS through a thread-safe function. The thread waits
//!   for JS to finish each callback before polling again (the same
//!   level-triggered contract), at the price of two thread handoffs per
//!   wakeup.
//!
//! The waiter polls duplicates of the sockets' fds, so a port closed under
//! an open waiter can never make it poll a recycled fd number; the facade
//! closes its waiters before the port anyway.
//!
//! Over 600 lines on purpose: both backends implement one contract over the
//! same FFI state; split apart, their unsafe invariants would span files.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use afxdp_core::{sys as core_sys, Error};
use napi::bindgen_prelude::{ClassInstance, Either, FnArgs, Function};
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::error::{invalid, to_js, Result};
use crate::port::NativePort;
use crate::transfer::NativeAttachedPort;

/// The rx ring has packets (POLLIN).
pub const READABLE: u32 = 1;
/// The tx ring is at most half full (POLLOUT).
pub const WRITABLE: u32 = 2;
/// The socket reported an error or hang-up; the port is unusable.
pub const ERROR: u32 = 4;

fn dup_cloexec(fd: RawFd) -> Result<OwnedFd> {
    core_sys::dup_raw(fd).map_err(|e| to_js(Error::sys("fcntl(F_DUPFD_CLOEXEC) on an AF_XDP socket", e)))
}

/// The JS callback after it threw: hand the exception to Node's
/// uncaught-exception machinery, as for any event handler.
unsafe fn rethrow_pending(env: sys::napi_env) {
    // SAFETY: the caller passes the env of the running callback.
    unsafe {
        let mut err = ptr::null_mut();
        if sys::napi_get_and_clear_last_exception(env, &mut err) == sys::Status::napi_ok && !err.is_null() {
            sys::napi_fatal_exception(env, err);
        }
    }
}

// ----------------------------------------------------------------- libuv

type UvPollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type UvCloseCb = unsafe extern "C" fn(*mut c_void);

type UvHandleSize = unsafe extern "C" fn(c_int) -> usize;
type UvPollInit = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type UvPollStart = unsafe extern "C" fn(*mut c_void, c_int, UvPollCb) -> c_int;
type UvPollStop = unsafe extern "C" fn(*mut c_void) -> c_int;
type UvClose = unsafe extern "C" fn(*mut c_void, Option<UvCloseCb>);
type UvStrerror = unsafe extern "C" fn(c_int) -> *const libc::c_char;

struct UvApi {
    handle_size: UvHandleSize,
    poll_init: UvPollInit,
    poll_start: UvPollStart,
    poll_stop: UvPollStop,
    close: UvClose,
    strerror: UvStrerror,
}

/// uv_handle_type UV_POLL (uv.h: UNKNOWN, ASYNC, CHECK, FS_EVENT, FS_POLL,
/// HANDLE, IDLE, NAMED_PIPE, POLL).
const UV_POLL: c_int = 8;

fn uv_api() -> Option<&'static UvApi> {
    static API: OnceLock<Option<UvApi>> = OnceLock::new();
    API.get_or_init(|| {
        let sym = |name: &CStr| {
            // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the
            // process (node exports libuv's symbols).
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        // SAFETY: each symbol is libuv's public function of that signature.
        unsafe {
            Some(UvApi {
                handle_size: std::mem::transmute::<*mut c_void, UvHandleSize>(sym(c"uv_handle_size")?),
                poll_init: std::mem::transmute::<*mut c_void, UvPollInit>(sym(c"uv_poll_init")?),
                poll_start: std::mem::transmute::<*mut c_void, UvPollStart>(sym(c"uv_poll_start")?),
                poll_stop: std::mem::transmute::<*mut c_void, UvPollStop>(sym(c"uv_poll_stop")?),
                close: std::mem::transmute::<*mut c_void, UvClose>(sym(c"uv_close")?),
                strerror: std::mem::transmute::<*mut c_void, UvStrerror>(sym(c"uv_strerror")?),
            })
        }
    })
    .as_ref()
}

fn uv_error(api: &UvApi, what: &str, rc: c_int) -> napi::Error<String> {
    // SAFETY: uv_strerror returns a static string for any code.
    let msg = unsafe { CStr::from_ptr((api.strerror)(rc)) }.to_string_lossy().into_owned();
    to_js(Error::new(afxdp_core::Code::System, format!("{what}: {msg}")))
}

/// What every uv callback of one waiter needs to call JS.
struct UvShared {
    env: sys::napi_env,
    func: sys::napi_ref,
    context: sys::napi_async_context,
}

impl Drop for UvShared {
    fn drop(&mut self) {
        // SAFETY: on the JS thread (uv callbacks and JS calls only).
        unsafe {
            sys::napi_delete_reference(self.env, self.func);
            sys::napi_async_destroy(self.env, self.context);
        }
    }
}

/// `handle->data` of a queue's uv_poll_t.
struct UvCtx {
    shared: Rc<UvShared>,
    queue: u32,
}

struct UvQueue {
    /// malloc'ed uv_poll_t; freed by the close callback.
    handle: *mut c_void,
    ctx: Box<UvCtx>,
    fd: OwnedFd,
    armed: u32,
}

struct UvBackend {
    api: &'static UvApi,
    queues: Vec<UvQueue>,
}

unsafe extern "C" fn uv_on_poll(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: libuv calls this on the JS thread with a handle whose data field
    // is our UvCtx (or null once closed); napi calls use that thread's env.
    unsafe {
        // handle->data is the first field of every uv handle.
        let ctx = *(handle as *mut *mut UvCtx);
        if ctx.is_null() {
            return;
        }
        // Copy what the call needs: the callback may close the waiter.
        let shared = (*ctx).shared.clone();
        let queue = (*ctx).queue;
        let ev = if status < 0 { ERROR } else { events as u32 & (READABLE | WRITABLE) };
        let env = shared.env;
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let (mut func, mut recv, mut result) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        let mut argv = [ptr::null_mut(); 2];
        if sys::napi_get_reference_value(env, shared.func, &mut func) == sys::Status::napi_ok
            && !func.is_null()
            && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok
            && sys::napi_create_uint32(env, queue, &mut argv[0]) == sys::Status::napi_ok
            && sys::napi_create_uint32(env, ev, &mut argv[1]) == sys::Status::napi_ok
        {
            // make_callback: runs process.nextTick and microtasks afterwards,
            // as for any I/O callback.
            let status = sys::napi_make_callback(env, shared.context, recv, func, 2, argv.as_ptr(), &mut result);
            if status == sys::Status::napi_pending_exception {
                rethrow_pending(env);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}

unsafe extern "C" fn uv_free_handle(handle: *mut c_void) {
    // SAFETY: the handle was allocated with malloc for libuv and is closed now.
    unsafe {
        libc::free(handle);
    }
}

impl UvBackend {
    fn new(env: &Env, api: &'static UvApi, fds: Vec<OwnedFd>, callback: sys::napi_value) -> Result<UvBackend> {
        let raw_env = env.raw();
        let mut uv_loop = ptr::null_mut();
        let mut func = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY: napi calls on the JS thread with live values.
        unsafe {
            if sys::napi_get_uv_event_loop(raw_env, &mut uv_loop) != sys::Status::napi_ok || uv_loop.is_null() {
                return Err(invalid("this runtime has no libuv event loop (napi_get_uv_event_loop)"));
            }
            let mut name = ptr::null_mut();
            sys::napi_create_string_utf8(raw_env, c"afxdp.Waiter".as_ptr(), 12, &mut name);
            let mut resource = ptr::null_mut();
            sys::napi_create_object(raw_env, &mut resource);
            if sys::napi_async_init(raw_env, resource, name, &mut context) != sys::Status::napi_ok {
                return Err(invalid("napi_async_init failed"));
            }
            if sys::napi_create_reference(raw_env, callback, 1, &mut func) != sys::Status::napi_ok {
                sys::napi_async_destroy(raw_env, context);
                return Err(invalid("napi_create_reference failed"));
            }
        }
        let shared = Rc::new(UvShared { env: raw_env, func, context });
        let mut backend = UvBackend { api, queues: Vec::with_capacity(fds.len()) };
        // SAFETY: uv_handle_size is a pure function.
        let size = unsafe { (api.handle_size)(UV_POLL) };
        for (q, fd) in fds.into_iter().enumerate() {
            // SAFETY: malloc'ed memory of libuv's own size for a poll handle,
            // suitably aligned; initialised by uv_poll_init before any use.
            let handle = unsafe { libc::calloc(1, size) };
            if handle.is_null() {
                return Err(invalid("out of memory for a uv_poll_t"));
            }
            let ctx = Box::new(UvCtx { shared: shared.clone(), queue: q as u32 });
            // SAFETY: loop and handle valid; fd open.
            let rc = unsafe { (api.poll_init)(uv_loop.cast(), handle, fd.as_raw_fd()) };
            if rc != 0 {
                // SAFETY: never initialised: plain free.
                unsafe { libc::free(handle) };
                return Err(uv_error(api, "uv_poll_init on an AF_XDP socket", rc));
            }
            // SAFETY: data is the first field of uv_handle_t.
            unsafe { *(handle as *mut *const UvCtx) = &*ctx };
            backend.queues.push(UvQueue { handle, ctx, fd, armed: 0 });
        }
        Ok(backend)
    }

    fn arm(&mut self, q: usize, events: u32) -> Result<()> {
        let queue = &mut self.queues[q];
        if queue.armed == events {
            return Ok(());
        }
        // SAFETY: an initialised, open handle.
        let rc = unsafe {
            if events == 0 {
                (self.api.poll_stop)(queue.handle)
            } else {
                (self.api.poll_start)(queue.handle, events as c_int, uv_on_poll)
            }
        };
        if rc != 0 {
            return Err(uv_error(self.api, "uv_poll_start on an AF_XDP socket", rc));
        }
        queue.armed = events;
        Ok(())
    }
}

impl Drop for UvBackend {
    fn drop(&mut self) {
        for queue in self.queues.drain(..) {
            // SAFETY: stop (removes the fd from epoll now), detach our
            // context, close (frees the memory in the close callback, on a
            // later loop turn); only then close the fd.
            unsafe {
                (self.api.poll_stop)(queue.handle);
                *(queue.handle as *mut *const UvCtx) = ptr::null();
                (self.api.close)(queue.handle, Some(uv_free_handle));
            }
            drop(queue.fd);
            drop(queue.ctx);
        }
    }
}

// ----------------------------------------------------------------- thread

struct ThreadShared {
    interest: Box<[AtomicU32]>,
    fds: Vec<OwnedFd>,
    /// eventfd: interest changed, JS finished a callback, or stop.
    ctl: OwnedFd,
    stop: AtomicBool,
    /// Events were handed to JS and it has not finished the last callback.
    awaiting: AtomicBool,
}

impl ThreadShared {
    fn signal(&self) {
        core_sys::eventfd_signal(self.ctl.as_fd());
    }

    fn clear(&self) {
        core_sys::eventfd_clear(self.ctl.as_fd());
    }
}

/// (queue, events, last-of-batch) packed into the data pointer of a
/// thread-safe function call: no allocation per wakeup.
const LAST: usize = 0x80;

fn pack(queue: usize, events: u32, last: bool) -> *mut c_void {
    ((queue << 8) | events as usize | if last { LAST } else { 0 }) as *mut c_void
}

struct SendPtr(sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function is meant to be called from any thread.
unsafe impl Send for SendPtr {}

fn poll_thread(shared: Arc<ThreadShared>, tsfn: SendPtr) {
    let n = shared.fds.len();
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(n + 1);
    let mut which: Vec<usize> = Vec::with_capacity(n);
    let mut ready: Vec<(usize, u32)> = Vec::with_capacity(n);
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        pfds.clear();
        which.clear();
        pfds.push(libc::pollfd { fd: shared.ctl.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        let awaiting = shared.awaiting.load(Ordering::Acquire);
        if !awaiting {
            for (q, fd) in shared.fds.iter().enumerate() {
                let want = shared.interest[q].load(Ordering::Acquire);
                if want == 0 {
                    continue;
                }
                let mut events = 0;
                if want & READABLE != 0 {
                    events |= libc::POLLIN;
                }
                if want & WRITABLE != 0 {
                    events |= libc::POLLOUT;
                }
                pfds.push(libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 });
                which.push(q);
            }
        }
        if core_sys::poll(&mut pfds, -1).is_err() {
            continue; // EINTR (nothing else is possible with valid fds)
        }
        if pfds[0].revents != 0 {
            shared.clear();
        }
        if awaiting {
            continue;
        }
        ready.clear();
        for (i, p) in pfds.iter().enumerate().skip(1) {
            if p.revents == 0 {
                continue;
            }
            let q = which[i - 1];
            let mut ev = 0;
            if p.revents & libc::POLLIN != 0 {
                ev |= READABLE;
            }
            if p.revents & libc::POLLOUT != 0 {
                ev |= WRITABLE;
            }
            if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                ev |= ERROR;
            }
            ev &= shared.interest[q].load(Ordering::Acquire) | ERROR;
            if ev != 0 {
                ready.push((q, ev));
            }
        }
        if ready.is_empty() {
            continue;
        }
        shared.awaiting.store(true, Ordering::Release);
        for (k, &(q, ev)) in ready.iter().enumerate() {
            // SAFETY: the thread-safe function outlives this thread (close
            // joins the thread before releasing it).
            let status = unsafe {
                sys::napi_call_threadsafe_function(
                    tsfn.0,
                    pack(q, ev, k + 1 == ready.len()),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
            if status != sys::Status::napi_ok {
                return; // closing
            }
        }
    }
}

unsafe extern "C" fn thread_call_js(env: sys::napi_env, js_cb: sys::napi_value, context: *mut c_void, data: *mut c_void) {
    // SAFETY: Node calls this on the JS thread; `context` is the ThreadShared
    // the tsfn holds a strong reference to until `thread_finalize`.
    unsafe {
        let shared = &*(context as *const ThreadShared);
        let bits = data as usize;
        let last = bits & LAST != 0;
        if !env.is_null() && !js_cb.is_null() {
            let (mut recv, mut result) = (ptr::null_mut(), ptr::null_mut());
            let mut argv = [ptr::null_mut(); 2];
            sys::napi_get_undefined(env, &mut recv);
            sys::napi_create_uint32(env, (bits >> 8) as u32, &mut argv[0]);
            sys::napi_create_uint32(env, (bits & 0x7f) as u32, &mut argv[1]);
            if sys::napi_call_function(env, recv, js_cb, 2, argv.as_ptr(), &mut result) == sys::Status::napi_pending_exception {
                rethrow_pending(env);
            }
        }
        if last {
            // JS is done with this batch of events: let the thread poll again.
            shared.awaiting.store(false, Ordering::Release);
            shared.signal();
        }
    }
}

unsafe extern "C" fn thread_finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Arc leaked with Arc::into_raw when the tsfn was
    // created; Node calls this finalizer once.
    unsafe {
        drop(Arc::from_raw(data as *const ThreadShared));
    }
}

struct ThreadBackend {
    shared: Arc<ThreadShared>,
    thread: Option<JoinHandle<()>>,
    tsfn: sys::napi_threadsafe_function,
    env: sys::napi_env,
    referenced: Cell<bool>,
}

impl ThreadBackend {
    fn new(env: &Env, fds: Vec<OwnedFd>, callback: sys::napi_value) -> Result<ThreadBackend> {
        let ctl = core_sys::eventfd().map_err(|e| to_js(Error::sys("eventfd", e)))?;
        let shared = Arc::new(ThreadShared {
            interest: (0..fds.len()).map(|_| AtomicU32::new(0)).collect(),
            fds,
            ctl,
            stop: AtomicBool::new(false),
            awaiting: AtomicBool::new(false),
        });
        let raw_env = env.raw();
        let mut tsfn = ptr::null_mut();
        let context = Arc::into_raw(shared.clone()) as *mut c_void;
        // SAFETY: napi calls on the JS thread; the context Arc is released by
        // thread_finalize (or right here on failure).
        unsafe {
            let mut name = ptr::null_mut();
            sys::napi_create_string_utf8(raw_env, c"afxdp.Waiter".as_ptr(), 12, &mut name);
            let status = sys::napi_create_threadsafe_function(
                raw_env,
                callback,
                ptr::null_mut(),
                name,
                0,
                1,
                context,
                Some(thread_finalize),
                context,
                Some(thread_call_js),
                &mut tsfn,
            );
            if status != sys::Status::napi_ok {
                drop(Arc::from_raw(context as *const ThreadShared));
                return Err(invalid("napi_create_threadsafe_function failed"));
            }
            // Nothing armed yet: do not keep the process alive.
            sys::napi_unref_threadsafe_function(raw_env, tsfn);
        }
        let thread_shared = shared.clone();
        let ptr = SendPtr(tsfn);
        let thread = std::thread::Builder::new()
            .name("afxdp-waiter".into())
            .spawn(move || poll_thread(thread_shared, ptr))
            .map_err(|e| {
                // SAFETY: not called by any thread.
                unsafe { sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort) };
                invalid(format!("starting the wakeup thread failed: {e}"))
            })?;
        Ok(ThreadBackend { shared, thread: Some(thread), tsfn, env: raw_env, referenced: Cell::new(false) })
    }

    fn arm(&mut self, q: usize, events: u32) {
        if self.shared.interest[q].swap(events, Ordering::AcqRel) != events {
            self.shared.signal();
        }
        // Keep the process alive while anything is armed, like an active handle.
        let any = self.shared.interest.iter().any(|i| i.load(Ordering::Relaxed) != 0);
        if any != self.referenced.get() {
            // SAFETY: JS thread, live tsfn.
            unsafe {
                if any {
                    sys::napi_ref_threadsafe_function(self.env, self.tsfn);
                } else {
                    sys::napi_unref_threadsafe_function(self.env, self.tsfn);
                }
            }
            self.referenced.set(any);
        }
    }
}

impl Drop for ThreadBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // SAFETY: no thread calls it any more; abort drops queued calls.
        unsafe { sys::napi_release_threadsafe_function(self.tsfn, sys::ThreadsafeFunctionReleaseMode::abort) };
    }
}

// ----------------------------------------------------------------- binding

enum Backend {
    Uv(UvBackend),
    Thread(ThreadBackend),
}

#[napi]
pub struct NativeWaiter {
    backend: Option<Backend>,
    queue_count: usize,
}

#[napi]
impl NativeWaiter {
    /// Watch every socket of `source`: a port, or queues of a port attached
    /// on this thread (numbered as there).
    /// `callback(queue, events)` runs on the JS thread with READABLE (1),
    /// WRITABLE (2) and/or ERROR (4). `mode`: "uv" (default where libuv is
    /// available) or "thread".
    #[napi(factory)]
    pub fn create(
        env: Env,
        source: Either<ClassInstance<'_, NativePort>, ClassInstance<'_, NativeAttachedPort>>,
        callback: Function<'_, FnArgs<(u32, u32)>, ()>,
        mode: Option<String>,
    ) -> Result<NativeWaiter> {
        let fds = match &source {
            Either::A(port) => {
                (0..port.queue_count() as u32).map(|q| port.socket_fd(q).and_then(dup_cloexec)).collect::<Result<Vec<_>>>()?
            }
            Either::B(port) => {
                (0..port.queue_count() as u32).map(|q| port.with_socket_fd(q, dup_cloexec)).collect::<Result<Vec<_>>>()?
            }
        };
        let queue_count = fds.len();
        let callback = callback.raw();
        let backend = match mode.as_deref() {
            None | Some("uv") => match uv_api() {
                Some(api) => Backend::Uv(UvBackend::new(&env, api, fds, callback)?),
                None if mode.is_none() => Backend::Thread(ThreadBackend::new(&env, fds, callback)?),
                None => return Err(invalid("this process does not export libuv's uv_poll functions; use mode \"thread\"")),
            },
            Some("thread") => Backend::Thread(ThreadBackend::new(&env, fds, callback)?),
            Some(other) => return Err(invalid(format!("waiter mode must be \"uv\" or \"thread\", not {other:?}"))),
        };
        Ok(NativeWaiter { backend: Some(backend), queue_count })
    }

    /// "uv" or "thread" ("closed" after close()).
    #[napi(getter)]
    pub fn mode(&self) -> &'static str {
        match self.backend {
            Some(Backend::Uv(_)) => "uv",
            Some(Backend::Thread(_)) => "thread",
            None => "closed",
        }
    }

    /// Set the events wanted on queue `queue` (READABLE | WRITABLE; 0 stops
    /// watching it). Level-triggered, until changed.
    #[napi]
    pub fn arm(&mut self, queue: u32, events: u32) -> Result<()> {
        if queue as usize >= self.queue_count {
            return Err(invalid(format!("queue index {queue} out of range (port has {} queues)", self.queue_count)));
        }
        if events & !(READABLE | WRITABLE) != 0 {
            return Err(invalid(format!("events {events} must combine READABLE (1) and WRITABLE (2)")));
        }
        match self.backend.as_mut() {
            Some(Backend::Uv(b)) => b.arm(queue as usize, events),
            Some(Backend::Thread(b)) => {
                b.arm(queue as usize, events);
                Ok(())
            }
            None => Err(to_js(Error::closed("this waiter"))),
        }
    }

    /// Stop watching and release the fds (and the thread); idempotent. No
    /// callback runs after this returns.
    #[napi]
    pub fn close(&mut self) {
        drop(self.backend.take());
    }
}
