//! The per-burst calls of one queue as plain Node-API functions.
//!
//! A `#[napi]` method pays for `napi_unwrap` of `this` plus napi-rs's borrow
//! bookkeeping on every call: measured 0.4–0.8 µs, against ~40 ns for a
//! plain Node-API function, which at 600 kpps and 32-packet bursts is 2–4 %
//! of a core. These functions reach their queue through the function's data
//! pointer instead, read their u32 arguments and return a u32: nothing else
//! happens between JS and the rings.

use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use afxdp_core::lease::{Caller, QueueGuard, SharedQueue};
use afxdp_core::{Code, Error};
use napi::bindgen_prelude::Object;
use napi::{sys, Env};

use crate::error::{invalid, js_message, Result};
use crate::shared_memory::DescriptorArea;

/// What every function of one queue reaches through its data pointer: the
/// queue itself (its own lock, never the port's: threads serving different
/// queues never meet here), who calls, and the descriptor slots.
pub(crate) struct QueueCalls {
    queue: Arc<SharedQueue>,
    caller: Caller,
    descriptors: Arc<DescriptorArea>,
    /// First slot of this queue in `descriptors`.
    base: usize,
    burst: usize,
}

/// Addresses, lengths and options of a range of slots.
type Slots<'a> = (&'a mut [u32], &'a mut [u32], &'a mut [u32]);

type Op = fn(&QueueCalls, &mut QueueGuard<'_>, [u32; 3]) -> std::result::Result<u32, Error>;

impl QueueCalls {
    /// Address, length and option slots [start, start+count) of this
    /// queue. Only for the operations below, which run on the JS thread one
    /// at a time.
    #[allow(clippy::mut_from_ref)]
    fn slots(&self, start: u32, count: u32) -> std::result::Result<Slots<'_>, Error> {
        let (start, count) = (start as usize, count as usize);
        if start.checked_add(count).is_none_or(|end| end > self.burst) {
            return Err(Error::invalid(format!(
                "descriptor slots {start}..{} exceed the burst size {}",
                start.saturating_add(count),
                self.burst
            )));
        }
        let base = self.base;
        // SAFETY: called on the JS thread that owns this descriptor area
        // (one area per port or per attached queue, used by one thread),
        // during a native call, so JS is not touching the slots; the three
        // ranges are disjoint (addresses, lengths, options).
        unsafe {
            Ok((
                self.descriptors.slice_mut(base + start, count),
                self.descriptors.slice_mut(base + self.burst + start, count),
                self.descriptors.slice_mut(base + 2 * self.burst + start, count),
            ))
        }
    }

    fn run(&self, op: Op, args: [u32; 3]) -> std::result::Result<u32, Error> {
        let mut queue = self.queue.lock(self.caller)?;
        op(self, &mut queue, args)
    }
}

/// (name, arity, operation) of every function `calls_object` creates.
const OPS: &[(&str, usize, Op)] = &[
    // (max) → descriptors received into slots [0, n), options included
    ("rxBurst", 1, |c, q, [max, ..]| {
        let (addrs, lens, opts) = c.slots(0, max)?;
        Ok(q.rx_burst(addrs, lens, opts) as u32)
    }),
    // (start, count, dropUnsent) → how many the tx ring took (whole
    // packets); with dropUnsent the rest go back to the free pool.
    ("txBurst", 3, |c, q, [start, count, drop_unsent]| {
        let (addrs, lens, opts) = c.slots(start, count)?;
        let sent = if drop_unsent != 0 { q.tx_burst_or_drop(addrs, lens, opts)? } else { q.tx_burst(addrs, lens, opts)? };
        Ok(sent as u32)
    }),
    // (start, count) → count, after giving those frames back
    ("release", 2, |c, q, [start, count, _]| {
        let (addrs, _, _) = c.slots(start, count)?;
        q.release(addrs)?;
        Ok(count)
    }),
    // (start, count) → free frames taken into the slots (lengths and
    // options zeroed: a single-fragment packet unless the caller chains)
    ("alloc", 2, |c, q, [start, count, _]| {
        let (addrs, lens, opts) = c.slots(start, count)?;
        let got = q.alloc(addrs);
        lens[..got].fill(0);
        opts[..got].fill(0);
        Ok(got as u32)
    }),
    ("reap", 0, |_, q, _| Ok(q.reap() as u32)),
    ("flushTx", 0, |_, q, _| Ok(q.flush_tx() as u32)),
    ("rxPending", 0, |_, q, _| Ok(q.queue().rx_pending())),
    ("txRoom", 0, |_, q, _| Ok(q.queue().tx_room())),
    ("freeFrames", 0, |_, q, _| Ok(q.free_frames())),
];

/// The data pointer of one function: its queue and which operation.
struct Callee {
    calls: Arc<QueueCalls>,
    op: Op,
    arity: usize,
}

unsafe extern "C" fn call(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: Node-API calls on the JS thread with the env and callback info Node
    // passed to this callback; `data` is dereferenced as explained below.
    unsafe {
        let mut argv = [ptr::null_mut(); 3];
        let mut argc = argv.len();
        let mut data = ptr::null_mut();
        if sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) != sys::Status::napi_ok {
            return ptr::null_mut();
        }
        // SAFETY: `data` is the Callee boxed in `define`, freed only by the
        // function's finalizer, which cannot run while the function is called.
        let callee = &*(data as *const Callee);
        let mut args = [0u32; 3];
        for (i, arg) in args.iter_mut().enumerate().take(callee.arity) {
            // Missing arguments read as undefined and fail here, like `true`
            // does: only numbers (and booleans for flags, below) are accepted.
            let mut value = 0;
            if sys::napi_get_value_uint32(env, argv[i], &mut value) != sys::Status::napi_ok {
                let mut flag = false;
                if sys::napi_get_value_bool(env, argv[i], &mut flag) != sys::Status::napi_ok {
                    return throw(env, &Error::invalid(format!("argument {} must be a non-negative integer", i + 1)));
                }
                value = flag as u32;
            }
            *arg = value;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| callee.calls.run(callee.op, args)))
            .unwrap_or_else(|_| Err(Error::new(Code::System, "internal error in a burst call (panic)")));
        match outcome {
            Ok(n) => {
                let mut result = ptr::null_mut();
                sys::napi_create_uint32(env, n, &mut result);
                result
            }
            Err(e) => throw(env, &e),
        }
    }
}

/// Throw a JS Error whose `code` is the core's code; returns null, what a
/// callback returns after throwing.
unsafe fn throw(env: sys::napi_env, e: &Error) -> sys::napi_value {
    // SAFETY: the caller passes the env of the running callback (this fn's contract).
    unsafe {
        let code = CString::new(e.code.as_str()).unwrap_or_default();
        let message = CString::new(js_message(e).replace('\0', " ")).unwrap_or_default();
        sys::napi_throw_error(env, code.as_ptr(), message.as_ptr());
        ptr::null_mut()
    }
}

unsafe extern "C" fn drop_callee(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Callee boxed in `calls_object`; Node calls this
    // finalizer once, after the function is gone.
    unsafe {
        drop(Box::from_raw(data as *mut Callee));
    }
}

/// An object with one plain function per operation on `queue`, made for
/// `caller`, using the descriptor slots from `base` (`burst` addresses,
/// `burst` lengths, `burst` options).
pub(crate) fn calls_object<'env>(
    env: &'env Env,
    queue: Arc<SharedQueue>,
    caller: Caller,
    descriptors: Arc<DescriptorArea>,
    base: usize,
    burst: usize,
) -> Result<Object<'env>> {
    let calls = Arc::new(QueueCalls { queue, caller, descriptors, base, burst });
    let raw = env.raw();
    let mut object = ptr::null_mut();
    // SAFETY: Node-API calls on the JS thread with values of this scope.
    unsafe {
        if sys::napi_create_object(raw, &mut object) != sys::Status::napi_ok {
            return Err(invalid("could not create the queue's call object"));
        }
        for &(name, arity, op) in OPS {
            let callee = Box::into_raw(Box::new(Callee { calls: calls.clone(), op, arity }));
            let cname = CString::new(name).expect("static name");
            let mut func = ptr::null_mut();
            if sys::napi_create_function(raw, cname.as_ptr(), name.len() as isize, Some(call), callee.cast(), &mut func)
                != sys::Status::napi_ok
            {
                drop(Box::from_raw(callee));
                return Err(invalid(format!("could not create the native function {name}")));
            }
            // From here the finalizer owns the box (a function left without
            // one is unreachable garbage that never reads its data).
            if sys::napi_add_finalizer(raw, func, callee.cast(), Some(drop_callee), ptr::null_mut(), ptr::null_mut())
                != sys::Status::napi_ok
            {
                drop(Box::from_raw(callee));
                return Err(invalid(format!("could not create the native function {name}")));
            }
            if sys::napi_set_named_property(raw, object, cname.as_ptr(), func) != sys::Status::napi_ok {
                return Err(invalid(format!("could not set the native function {name}")));
            }
        }
    }
    Ok(Object::from_raw(raw, object))
}
