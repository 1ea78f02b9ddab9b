//! Batch consumption for a group-less follower: librdkafka's `rd_kafka_consume_batch_queue`, which
//! rust-rdkafka does not wrap.
//!
//! rust-rdkafka's `BaseConsumer::poll` hands over one message per call, and each call reads the clock,
//! takes the queue's lock, wraps the message in an event and checks the poll interval — ~0.5 µs of CPU a
//! record on the partner load (docs/performance.md, "The partner table's misses prefetched"), as much as
//! parsing it. A [`FetchQueue`] takes the fetched messages of the partitions given to it
//! ([`FetchQueue::take_partition`]: the partition's fetch queue is forwarded to it, no longer to the
//! consumer's queue) and hands over up to a batch's worth per call ([`FetchQueue::consume`]).
//!
//! What comes through it is everything librdkafka puts on a partition's fetch queue: its records, its
//! end (`enable.partition.eof`) and its errors (fetch errors, offset resets), each partition's in offset
//! order — so one thread consumes at a time, or a partition's messages would be split between callers.
//! Client-wide errors, statistics and logs still go to the consumer's own queue, which the follower
//! keeps serving ([`FetchQueue::events_waiting`] says how many to poll with `BaseConsumer::poll`), so the
//! client's error count and the lag gauges work as before. A partition is taken before it is assigned,
//! so none of its records reaches the consumer's queue.
//!
//! Two things differ from `poll`: librdkafka advances a partition's application position past an end or
//! error message too (the end's offset is the high watermark, so the position reads one past it; the lag
//! gauge clamps, and the position matters only to pause and resume, which followers never do); and a
//! partition that is unassigned loses its forward (librdkafka clears it when its fetch stops and does not
//! restore it), so a partition assigned again must be taken again — the followers never unassign.
//!
//! Lifetimes: a [`FetchQueue`] borrows its consumer and each [`Fetched`] message its queue, so every
//! librdkafka object this module holds is released before the consumer is closed and destroyed (librdkafka
//! waits for them otherwise).

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use anyhow::anyhow;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// A queue of the fetched records of the partitions taken, owned by the follower (see the module
/// documentation).
pub struct FetchQueue<'c> {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// The consumer's own queue (errors, statistics, logs), to count what waits there.
    events: NonNull<rdsys::rd_kafka_queue_t>,
    client: NonNull<rdsys::rd_kafka_t>,
    consumer: PhantomData<&'c ()>,
}

impl<'c> FetchQueue<'c> {
    /// A new, empty queue of `consumer`'s client.
    pub fn new<C: ConsumerContext>(
        consumer: &'c BaseConsumer<C>,
    ) -> anyhow::Result<FetchQueue<'c>> {
        let client = NonNull::new(consumer.client().native_ptr())
            .ok_or_else(|| anyhow!("the consumer has no librdkafka handle"))?;
        // SAFETY: `client` is the live handle of `consumer`, which outlives the queues ('c).
        let events = NonNull::new(unsafe { rdsys::rd_kafka_queue_get_consumer(client.as_ptr()) })
            .ok_or_else(|| anyhow!("the consumer has no queue"))?;
        // SAFETY: as above.
        let Some(queue) = NonNull::new(unsafe { rdsys::rd_kafka_queue_new(client.as_ptr()) })
        else {
            // SAFETY: the handle is ours and released once.
            unsafe { rdsys::rd_kafka_queue_destroy(events.as_ptr()) };
            return Err(anyhow!("librdkafka could not create a queue"));
        };
        Ok(FetchQueue {
            queue,
            events,
            client,
            consumer: PhantomData,
        })
    }

    /// Forwards `topic`'s `partition`'s fetched records (and its end and fetch errors) to this queue.
    /// Call before the partition is assigned, and again if it is ever assigned anew (see the module
    /// documentation).
    pub fn take_partition(&self, topic: &str, partition: i32) -> anyhow::Result<()> {
        let name = CString::new(topic).map_err(|_| anyhow!("topic name {topic:?} holds a NUL"))?;
        // SAFETY: the client handle is live ('c); librdkafka copies the name.
        let source = unsafe {
            rdsys::rd_kafka_queue_get_partition(self.client.as_ptr(), name.as_ptr(), partition)
        };
        let source = NonNull::new(source)
            .ok_or_else(|| anyhow!("no fetch queue for {topic} partition {partition}"))?;
        // SAFETY: both handles are live; the forward holds its own reference to this queue, so the
        // partition's handle can be released at once (the forward stays).
        unsafe {
            rdsys::rd_kafka_queue_forward(source.as_ptr(), self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(source.as_ptr());
        }
        Ok(())
    }

    /// Waits up to `wait` for a first message, then appends what is queued already, up to `max` more.
    /// One thread at a time (see the module documentation).
    pub fn consume<'q>(&'q self, wait: Duration, max: usize, out: &mut Vec<Fetched<'q>>) {
        out.reserve(max);
        let timeout = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `out` has room for `max` more elements, and a `Fetched` is a non-null message pointer
        // (`repr(transparent)`); librdkafka writes at most `max` pointers there and returns how many are
        // handed over (the first ones; it may leave others it took back behind them), which become `out`'s.
        unsafe {
            let slots = out.spare_capacity_mut().as_mut_ptr().cast();
            let n = rdsys::rd_kafka_consume_batch_queue(self.queue.as_ptr(), timeout, slots, max);
            let n = usize::try_from(n).unwrap_or(0).min(max);
            out.set_len(out.len() + n);
        }
    }

    /// How many events (errors, statistics, logs) wait on the consumer's own queue: the follower serves
    /// that many with `BaseConsumer::poll(Duration::ZERO)`, which hands over or handles one a call.
    pub fn events_waiting(&self) -> usize {
        // SAFETY: the handle is live until this value drops.
        unsafe { rdsys::rd_kafka_queue_length(self.events.as_ptr()) }
    }
}

impl Drop for FetchQueue<'_> {
    fn drop(&mut self) {
        // SAFETY: the handles are this value's; the consumer is still live ('c). Forwards to the queue
        // from the partitions' queues keep the underlying queue until the consumer drops them; records
        // forwarded after this are discarded by librdkafka.
        unsafe {
            rdsys::rd_kafka_queue_destroy(self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(self.events.as_ptr());
        }
    }
}

/// One message taken from a [`FetchQueue`]: a record, or a partition's end or fetch error. Released to
/// librdkafka when dropped.
#[repr(transparent)]
pub struct Fetched<'q> {
    message: NonNull<rdsys::rd_kafka_message_t>,
    queue: PhantomData<&'q ()>,
}

// SAFETY: the message is owned by this value; librdkafka's messages are immutable once handed over and may
// be read and destroyed on any thread.
unsafe impl Send for Fetched<'_> {}
unsafe impl Sync for Fetched<'_> {}

/// One fetched record, borrowed from its message.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// `None`: a tombstone.
    pub value: Option<&'a [u8]>,
}

impl Record<'_> {
    /// Bytes of key and value.
    pub fn size(&self) -> usize {
        self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len)
    }
}

/// What a [`Fetched`] message is.
pub enum Fetch<'m> {
    Record(Record<'m>),
    /// The partition's end was reached (`enable.partition.eof`).
    End(i32),
    /// A fetch error of the partition (librdkafka's message for it).
    Error(i32, String),
}

impl Fetched<'_> {
    pub fn get(&self) -> Fetch<'_> {
        let p = self.message.as_ptr();
        // The error code is read as the C `int` it is: librdkafka may carry a code (a broker's) that the
        // bindings' enum does not list.
        // SAFETY: the pointer is valid and not written to until this value drops.
        let err = unsafe { std::ptr::addr_of!((*p).err).cast::<i32>().read() };
        // SAFETY: as above.
        let m = unsafe { &*p };
        if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR as i32 {
            Fetch::Record(Record {
                partition: m.partition,
                offset: m.offset,
                // SAFETY: librdkafka's key and payload are `len` bytes (or null), owned by the message.
                key: unsafe { bytes(m.key, m.key_len) },
                value: unsafe { bytes(m.payload, m.len) },
            })
        } else if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF as i32 {
            Fetch::End(m.partition)
        } else {
            // SAFETY: for an error message librdkafka returns its NUL-terminated text (the payload) or the
            // code's static description, valid while the message lives.
            let text = unsafe { rdsys::rd_kafka_message_errstr(p) };
            let text = if text.is_null() {
                format!("error {err}")
            } else {
                // SAFETY: as above.
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned()
            };
            Fetch::Error(m.partition, text)
        }
    }
}

/// The `len` bytes at `p`; `None` for a null pointer.
///
/// # Safety
/// `p` is null or points to `len` readable bytes that outlive `'a`.
unsafe fn bytes<'a>(p: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the caller's.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
    }
}

impl Drop for Fetched<'_> {
    fn drop(&mut self) {
        // SAFETY: the message is this value's, handed over by `rd_kafka_consume_batch_queue`.
        unsafe { rdsys::rd_kafka_message_destroy(self.message.as_ptr()) }
    }
}
