// aiopp — umbrella header: a thin C++23 RAII layer over the Linux native AIO syscalls.
#pragma once

#include "aio/context.hpp"
#include "aio/iocb.hpp"
#include "aio/observer.hpp"
#include "aio/result.hpp"
#include "aio/syscall_kind.hpp"
#include "aio/version.hpp"
// Beyond the syscalls
#include "aio/batch.hpp"
#include "aio/buffer.hpp"
#include "aio/flags.hpp"
#include "aio/limits.hpp"
#include "aio/nowait.hpp"
#include "aio/probe.hpp"
#include "aio/wait.hpp"
// Completion engine and coroutines
#include "aio/engine.hpp"
#include "aio/task.hpp"
