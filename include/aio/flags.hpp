// aiopp — flags.hpp: the typed RWF_* flags (aio::Rwf) and poll masks (aio::PollEvents).
//
// They live in iocb.hpp, next to the builders and modifiers that take them
// (set_rw_flags(iocb&, Rwf), add_rw_flags(), rw_flags(), make_poll(int, PollEvents),
// poll_events()); this header includes it, so either include gives the same names.
#pragma once

#include "aio/iocb.hpp"
