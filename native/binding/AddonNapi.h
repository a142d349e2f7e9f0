// Every binding file includes node-addon-api through this header, so all of them are compiled with the same
// configuration (node-addon-api is header-only: a setting that differed between files would break the ODR).
#pragma once

// When a worker_thread is terminated while an addon call is in flight, the call completes in an environment that can
// no longer run JS, so settling its promise fails. By default node-addon-api then rethrows from a C callback, which
// aborts the whole process; with this defined it drops the exception instead. Nothing is lost: no JS code is left
// in that environment to observe the promise. test/unit/worker-thread.test.ts terminates workers mid-call.
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS

#include <napi.h>
