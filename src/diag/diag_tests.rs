//! Tests of the watchdog, thread capture, task tracking and the sampler.
