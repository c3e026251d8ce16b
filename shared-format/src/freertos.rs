//! The USER event ids of the FreeRTOS integration (`encoder/c-api/freertos/`), so that
//! the decoder names them. What FreeRTOS does that fits an existing record kind uses it:
//! task switches are SWITCH records, tasks are named by THREAD records, interrupts
//! (the SysTick, user ISRs) are kernel entries of path `Interrupt` (the exception number
//! in the entry word) and their exits. The rest are USER records with these ids, whose
//! payload starts with the object's address as a little-endian `u32` (queue,
//! semaphore, mutex, task, timer), unless the table says otherwise.
//!
//! The C header `tracemark_freertos.h` repeats these numbers (`TM_FREERTOS_EV_*`); the
//! test `freertos_ids_match_the_c_header` checks that the two agree.

/// The first id of the FreeRTOS range (ids `0x7f00..0x7f40`).
pub const FREERTOS_BASE: u32 = 0x7f00;

/// A FreeRTOS event id, its name and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeRtosEvent {
    /// The USER record id.
    pub id: u32,
    /// The name the decoder shows (`freertos:<name>`).
    pub name: &'static str,
    /// What the payload holds.
    pub payload: &'static str,
}

macro_rules! events {
    ($($konst:ident = $off:expr, $name:expr, $payload:expr;)*) => {
        $(
            #[doc = concat!("`", $name, "`: ", $payload)]
            pub const $konst: u32 = FREERTOS_BASE + $off;
        )*
        /// Every FreeRTOS event, by id.
        pub const EVENTS: &[FreeRtosEvent] = &[
            $(FreeRtosEvent { id: $konst, name: $name, payload: $payload },)*
        ];
    };
}

events! {
    QUEUE_CREATE = 0, "QUEUE_CREATE", "queue address (u32), FreeRTOS queue type (u8: 0 queue, 1 mutex, 2 counting semaphore, 3 binary semaphore, 4 recursive mutex)";
    QUEUE_SEND = 1, "QUEUE_SEND", "queue address (u32); also a semaphore or mutex given";
    QUEUE_SEND_FROM_ISR = 2, "QUEUE_SEND_FROM_ISR", "queue address (u32)";
    QUEUE_RECEIVE = 3, "QUEUE_RECEIVE", "queue address (u32); also a semaphore or mutex taken";
    QUEUE_RECEIVE_FROM_ISR = 4, "QUEUE_RECEIVE_FROM_ISR", "queue address (u32)";
    QUEUE_BLOCK_ON_SEND = 5, "QUEUE_BLOCK_ON_SEND", "queue address (u32): the task blocks, the queue is full";
    QUEUE_BLOCK_ON_RECEIVE = 6, "QUEUE_BLOCK_ON_RECEIVE", "queue address (u32): the task blocks, the queue is empty";
    QUEUE_SEND_FAILED = 7, "QUEUE_SEND_FAILED", "queue address (u32)";
    QUEUE_RECEIVE_FAILED = 8, "QUEUE_RECEIVE_FAILED", "queue address (u32)";
    QUEUE_DELETE = 9, "QUEUE_DELETE", "queue address (u32)";
    TASK_DELETE = 16, "TASK_DELETE", "task (TCB) address (u32)";
    TASK_DELAY = 17, "TASK_DELAY", "nothing: the running task called vTaskDelay";
    TASK_DELAY_UNTIL = 18, "TASK_DELAY_UNTIL", "tick to wake at (u32)";
    TASK_NOTIFY = 19, "TASK_NOTIFY", "notified task address (u32), notification index (u8)";
    TASK_NOTIFY_FROM_ISR = 20, "TASK_NOTIFY_FROM_ISR", "notified task address (u32), notification index (u8)";
    TASK_NOTIFY_GIVE_FROM_ISR = 21, "TASK_NOTIFY_GIVE_FROM_ISR", "notified task address (u32), notification index (u8)";
    TASK_NOTIFY_WAIT = 22, "TASK_NOTIFY_WAIT", "notification index (u8): the running task waited (ulTaskNotifyWait)";
    TASK_NOTIFY_TAKE = 23, "TASK_NOTIFY_TAKE", "notification index (u8): the running task took (ulTaskNotifyTake)";
    TIMER_CREATE = 32, "TIMER_CREATE", "software timer address (u32)";
    TIMER_COMMAND = 33, "TIMER_COMMAND", "software timer address (u32), command id (u8)";
    TIMER_EXPIRED = 34, "TIMER_EXPIRED", "software timer address (u32): its callback runs";
    TICK = 48, "TICK", "tick count (u32) after the increment (only with TM_FREERTOS_TICK_RECORDS)";
}

/// The FreeRTOS event with USER id `id`, if any.
pub fn event(id: u32) -> Option<&'static FreeRtosEvent> {
    if !(FREERTOS_BASE..FREERTOS_BASE + 0x40).contains(&id) {
        return None;
    }
    EVENTS.iter().find(|e| e.id == id)
}

/// The object address at the start of a FreeRTOS event's payload, if it has one.
pub fn object(payload: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(payload.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C header's `#define TM_FREERTOS_EV_<NAME> <id>` lines name every event with
    /// its id, and no other.
    #[test]
    fn freertos_ids_match_the_c_header() {
        let header = include_str!("../../encoder/c-api/freertos/tracemark_freertos.h");
        let mut found = std::vec::Vec::new();
        for line in header.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("#define") {
                continue;
            }
            let Some(name) = w.next().and_then(|n| n.strip_prefix("TM_FREERTOS_EV_")) else {
                continue;
            };
            let v = w.next().unwrap();
            let v = u32::from_str_radix(v.trim_start_matches("0x").trim_end_matches('u'), 16)
                .unwrap_or_else(|_| panic!("{line}"));
            found.push((name, v));
        }
        let want: std::vec::Vec<_> = EVENTS.iter().map(|e| (e.name, e.id)).collect();
        assert_eq!(found, want);
        for e in EVENTS {
            assert_eq!(event(e.id), Some(e));
        }
        assert_eq!(event(FREERTOS_BASE + 63), None);
        assert_eq!(event(5), None);
    }
}
