//! ARM EABI Linux syscall numbers and names.
//!
//! The table is the EABI view (`common` and `eabi` rows) of the kernel's
//! `arch/arm/tools/syscall.tbl` as of Linux 6.1, taken from the uapi header generated
//! from it (`asm/unistd-eabi.h`, Debian's `linux-libc-dev-armhf-cross` 6.1.4). Gaps are
//! numbers the table leaves unused (OABI-only or removed calls). The private ARM
//! syscalls (`__ARM_NR_BASE` = 0xf0000, `arch/arm/include/uapi/asm/unistd.h`) are a
//! second, separate table: `qemu-arm -strace` does not print them.

/// One past the highest number of [`NAMES`].
pub const TABLE_END: u32 = 451;

/// The first private ARM syscall number (`__ARM_NR_BASE`).
pub const ARM_PRIVATE_BASE: u32 = 0xf0000;

/// Names by number, `None` for numbers the table leaves unused.
pub static NAMES: [Option<&str>; TABLE_END as usize] = [
    Some("restart_syscall"),              // 0
    Some("exit"),                         // 1
    Some("fork"),                         // 2
    Some("read"),                         // 3
    Some("write"),                        // 4
    Some("open"),                         // 5
    Some("close"),                        // 6
    None,                                 // 7
    Some("creat"),                        // 8
    Some("link"),                         // 9
    Some("unlink"),                       // 10
    Some("execve"),                       // 11
    Some("chdir"),                        // 12
    None,                                 // 13
    Some("mknod"),                        // 14
    Some("chmod"),                        // 15
    Some("lchown"),                       // 16
    None,                                 // 17
    None,                                 // 18
    Some("lseek"),                        // 19
    Some("getpid"),                       // 20
    Some("mount"),                        // 21
    None,                                 // 22
    Some("setuid"),                       // 23
    Some("getuid"),                       // 24
    None,                                 // 25
    Some("ptrace"),                       // 26
    None,                                 // 27
    None,                                 // 28
    Some("pause"),                        // 29
    None,                                 // 30
    None,                                 // 31
    None,                                 // 32
    Some("access"),                       // 33
    Some("nice"),                         // 34
    None,                                 // 35
    Some("sync"),                         // 36
    Some("kill"),                         // 37
    Some("rename"),                       // 38
    Some("mkdir"),                        // 39
    Some("rmdir"),                        // 40
    Some("dup"),                          // 41
    Some("pipe"),                         // 42
    Some("times"),                        // 43
    None,                                 // 44
    Some("brk"),                          // 45
    Some("setgid"),                       // 46
    Some("getgid"),                       // 47
    None,                                 // 48
    Some("geteuid"),                      // 49
    Some("getegid"),                      // 50
    Some("acct"),                         // 51
    Some("umount2"),                      // 52
    None,                                 // 53
    Some("ioctl"),                        // 54
    Some("fcntl"),                        // 55
    None,                                 // 56
    Some("setpgid"),                      // 57
    None,                                 // 58
    None,                                 // 59
    Some("umask"),                        // 60
    Some("chroot"),                       // 61
    Some("ustat"),                        // 62
    Some("dup2"),                         // 63
    Some("getppid"),                      // 64
    Some("getpgrp"),                      // 65
    Some("setsid"),                       // 66
    Some("sigaction"),                    // 67
    None,                                 // 68
    None,                                 // 69
    Some("setreuid"),                     // 70
    Some("setregid"),                     // 71
    Some("sigsuspend"),                   // 72
    Some("sigpending"),                   // 73
    Some("sethostname"),                  // 74
    Some("setrlimit"),                    // 75
    None,                                 // 76
    Some("getrusage"),                    // 77
    Some("gettimeofday"),                 // 78
    Some("settimeofday"),                 // 79
    Some("getgroups"),                    // 80
    Some("setgroups"),                    // 81
    None,                                 // 82
    Some("symlink"),                      // 83
    None,                                 // 84
    Some("readlink"),                     // 85
    Some("uselib"),                       // 86
    Some("swapon"),                       // 87
    Some("reboot"),                       // 88
    None,                                 // 89
    None,                                 // 90
    Some("munmap"),                       // 91
    Some("truncate"),                     // 92
    Some("ftruncate"),                    // 93
    Some("fchmod"),                       // 94
    Some("fchown"),                       // 95
    Some("getpriority"),                  // 96
    Some("setpriority"),                  // 97
    None,                                 // 98
    Some("statfs"),                       // 99
    Some("fstatfs"),                      // 100
    None,                                 // 101
    None,                                 // 102
    Some("syslog"),                       // 103
    Some("setitimer"),                    // 104
    Some("getitimer"),                    // 105
    Some("stat"),                         // 106
    Some("lstat"),                        // 107
    Some("fstat"),                        // 108
    None,                                 // 109
    None,                                 // 110
    Some("vhangup"),                      // 111
    None,                                 // 112
    None,                                 // 113
    Some("wait4"),                        // 114
    Some("swapoff"),                      // 115
    Some("sysinfo"),                      // 116
    None,                                 // 117
    Some("fsync"),                        // 118
    Some("sigreturn"),                    // 119
    Some("clone"),                        // 120
    Some("setdomainname"),                // 121
    Some("uname"),                        // 122
    None,                                 // 123
    Some("adjtimex"),                     // 124
    Some("mprotect"),                     // 125
    Some("sigprocmask"),                  // 126
    None,                                 // 127
    Some("init_module"),                  // 128
    Some("delete_module"),                // 129
    None,                                 // 130
    Some("quotactl"),                     // 131
    Some("getpgid"),                      // 132
    Some("fchdir"),                       // 133
    Some("bdflush"),                      // 134
    Some("sysfs"),                        // 135
    Some("personality"),                  // 136
    None,                                 // 137
    Some("setfsuid"),                     // 138
    Some("setfsgid"),                     // 139
    Some("_llseek"),                      // 140
    Some("getdents"),                     // 141
    Some("_newselect"),                   // 142
    Some("flock"),                        // 143
    Some("msync"),                        // 144
    Some("readv"),                        // 145
    Some("writev"),                       // 146
    Some("getsid"),                       // 147
    Some("fdatasync"),                    // 148
    Some("_sysctl"),                      // 149
    Some("mlock"),                        // 150
    Some("munlock"),                      // 151
    Some("mlockall"),                     // 152
    Some("munlockall"),                   // 153
    Some("sched_setparam"),               // 154
    Some("sched_getparam"),               // 155
    Some("sched_setscheduler"),           // 156
    Some("sched_getscheduler"),           // 157
    Some("sched_yield"),                  // 158
    Some("sched_get_priority_max"),       // 159
    Some("sched_get_priority_min"),       // 160
    Some("sched_rr_get_interval"),        // 161
    Some("nanosleep"),                    // 162
    Some("mremap"),                       // 163
    Some("setresuid"),                    // 164
    Some("getresuid"),                    // 165
    None,                                 // 166
    None,                                 // 167
    Some("poll"),                         // 168
    Some("nfsservctl"),                   // 169
    Some("setresgid"),                    // 170
    Some("getresgid"),                    // 171
    Some("prctl"),                        // 172
    Some("rt_sigreturn"),                 // 173
    Some("rt_sigaction"),                 // 174
    Some("rt_sigprocmask"),               // 175
    Some("rt_sigpending"),                // 176
    Some("rt_sigtimedwait"),              // 177
    Some("rt_sigqueueinfo"),              // 178
    Some("rt_sigsuspend"),                // 179
    Some("pread64"),                      // 180
    Some("pwrite64"),                     // 181
    Some("chown"),                        // 182
    Some("getcwd"),                       // 183
    Some("capget"),                       // 184
    Some("capset"),                       // 185
    Some("sigaltstack"),                  // 186
    Some("sendfile"),                     // 187
    None,                                 // 188
    None,                                 // 189
    Some("vfork"),                        // 190
    Some("ugetrlimit"),                   // 191
    Some("mmap2"),                        // 192
    Some("truncate64"),                   // 193
    Some("ftruncate64"),                  // 194
    Some("stat64"),                       // 195
    Some("lstat64"),                      // 196
    Some("fstat64"),                      // 197
    Some("lchown32"),                     // 198
    Some("getuid32"),                     // 199
    Some("getgid32"),                     // 200
    Some("geteuid32"),                    // 201
    Some("getegid32"),                    // 202
    Some("setreuid32"),                   // 203
    Some("setregid32"),                   // 204
    Some("getgroups32"),                  // 205
    Some("setgroups32"),                  // 206
    Some("fchown32"),                     // 207
    Some("setresuid32"),                  // 208
    Some("getresuid32"),                  // 209
    Some("setresgid32"),                  // 210
    Some("getresgid32"),                  // 211
    Some("chown32"),                      // 212
    Some("setuid32"),                     // 213
    Some("setgid32"),                     // 214
    Some("setfsuid32"),                   // 215
    Some("setfsgid32"),                   // 216
    Some("getdents64"),                   // 217
    Some("pivot_root"),                   // 218
    Some("mincore"),                      // 219
    Some("madvise"),                      // 220
    Some("fcntl64"),                      // 221
    None,                                 // 222
    None,                                 // 223
    Some("gettid"),                       // 224
    Some("readahead"),                    // 225
    Some("setxattr"),                     // 226
    Some("lsetxattr"),                    // 227
    Some("fsetxattr"),                    // 228
    Some("getxattr"),                     // 229
    Some("lgetxattr"),                    // 230
    Some("fgetxattr"),                    // 231
    Some("listxattr"),                    // 232
    Some("llistxattr"),                   // 233
    Some("flistxattr"),                   // 234
    Some("removexattr"),                  // 235
    Some("lremovexattr"),                 // 236
    Some("fremovexattr"),                 // 237
    Some("tkill"),                        // 238
    Some("sendfile64"),                   // 239
    Some("futex"),                        // 240
    Some("sched_setaffinity"),            // 241
    Some("sched_getaffinity"),            // 242
    Some("io_setup"),                     // 243
    Some("io_destroy"),                   // 244
    Some("io_getevents"),                 // 245
    Some("io_submit"),                    // 246
    Some("io_cancel"),                    // 247
    Some("exit_group"),                   // 248
    Some("lookup_dcookie"),               // 249
    Some("epoll_create"),                 // 250
    Some("epoll_ctl"),                    // 251
    Some("epoll_wait"),                   // 252
    Some("remap_file_pages"),             // 253
    None,                                 // 254
    None,                                 // 255
    Some("set_tid_address"),              // 256
    Some("timer_create"),                 // 257
    Some("timer_settime"),                // 258
    Some("timer_gettime"),                // 259
    Some("timer_getoverrun"),             // 260
    Some("timer_delete"),                 // 261
    Some("clock_settime"),                // 262
    Some("clock_gettime"),                // 263
    Some("clock_getres"),                 // 264
    Some("clock_nanosleep"),              // 265
    Some("statfs64"),                     // 266
    Some("fstatfs64"),                    // 267
    Some("tgkill"),                       // 268
    Some("utimes"),                       // 269
    Some("arm_fadvise64_64"),             // 270
    Some("pciconfig_iobase"),             // 271
    Some("pciconfig_read"),               // 272
    Some("pciconfig_write"),              // 273
    Some("mq_open"),                      // 274
    Some("mq_unlink"),                    // 275
    Some("mq_timedsend"),                 // 276
    Some("mq_timedreceive"),              // 277
    Some("mq_notify"),                    // 278
    Some("mq_getsetattr"),                // 279
    Some("waitid"),                       // 280
    Some("socket"),                       // 281
    Some("bind"),                         // 282
    Some("connect"),                      // 283
    Some("listen"),                       // 284
    Some("accept"),                       // 285
    Some("getsockname"),                  // 286
    Some("getpeername"),                  // 287
    Some("socketpair"),                   // 288
    Some("send"),                         // 289
    Some("sendto"),                       // 290
    Some("recv"),                         // 291
    Some("recvfrom"),                     // 292
    Some("shutdown"),                     // 293
    Some("setsockopt"),                   // 294
    Some("getsockopt"),                   // 295
    Some("sendmsg"),                      // 296
    Some("recvmsg"),                      // 297
    Some("semop"),                        // 298
    Some("semget"),                       // 299
    Some("semctl"),                       // 300
    Some("msgsnd"),                       // 301
    Some("msgrcv"),                       // 302
    Some("msgget"),                       // 303
    Some("msgctl"),                       // 304
    Some("shmat"),                        // 305
    Some("shmdt"),                        // 306
    Some("shmget"),                       // 307
    Some("shmctl"),                       // 308
    Some("add_key"),                      // 309
    Some("request_key"),                  // 310
    Some("keyctl"),                       // 311
    Some("semtimedop"),                   // 312
    Some("vserver"),                      // 313
    Some("ioprio_set"),                   // 314
    Some("ioprio_get"),                   // 315
    Some("inotify_init"),                 // 316
    Some("inotify_add_watch"),            // 317
    Some("inotify_rm_watch"),             // 318
    Some("mbind"),                        // 319
    Some("get_mempolicy"),                // 320
    Some("set_mempolicy"),                // 321
    Some("openat"),                       // 322
    Some("mkdirat"),                      // 323
    Some("mknodat"),                      // 324
    Some("fchownat"),                     // 325
    Some("futimesat"),                    // 326
    Some("fstatat64"),                    // 327
    Some("unlinkat"),                     // 328
    Some("renameat"),                     // 329
    Some("linkat"),                       // 330
    Some("symlinkat"),                    // 331
    Some("readlinkat"),                   // 332
    Some("fchmodat"),                     // 333
    Some("faccessat"),                    // 334
    Some("pselect6"),                     // 335
    Some("ppoll"),                        // 336
    Some("unshare"),                      // 337
    Some("set_robust_list"),              // 338
    Some("get_robust_list"),              // 339
    Some("splice"),                       // 340
    Some("arm_sync_file_range"),          // 341
    Some("tee"),                          // 342
    Some("vmsplice"),                     // 343
    Some("move_pages"),                   // 344
    Some("getcpu"),                       // 345
    Some("epoll_pwait"),                  // 346
    Some("kexec_load"),                   // 347
    Some("utimensat"),                    // 348
    Some("signalfd"),                     // 349
    Some("timerfd_create"),               // 350
    Some("eventfd"),                      // 351
    Some("fallocate"),                    // 352
    Some("timerfd_settime"),              // 353
    Some("timerfd_gettime"),              // 354
    Some("signalfd4"),                    // 355
    Some("eventfd2"),                     // 356
    Some("epoll_create1"),                // 357
    Some("dup3"),                         // 358
    Some("pipe2"),                        // 359
    Some("inotify_init1"),                // 360
    Some("preadv"),                       // 361
    Some("pwritev"),                      // 362
    Some("rt_tgsigqueueinfo"),            // 363
    Some("perf_event_open"),              // 364
    Some("recvmmsg"),                     // 365
    Some("accept4"),                      // 366
    Some("fanotify_init"),                // 367
    Some("fanotify_mark"),                // 368
    Some("prlimit64"),                    // 369
    Some("name_to_handle_at"),            // 370
    Some("open_by_handle_at"),            // 371
    Some("clock_adjtime"),                // 372
    Some("syncfs"),                       // 373
    Some("sendmmsg"),                     // 374
    Some("setns"),                        // 375
    Some("process_vm_readv"),             // 376
    Some("process_vm_writev"),            // 377
    Some("kcmp"),                         // 378
    Some("finit_module"),                 // 379
    Some("sched_setattr"),                // 380
    Some("sched_getattr"),                // 381
    Some("renameat2"),                    // 382
    Some("seccomp"),                      // 383
    Some("getrandom"),                    // 384
    Some("memfd_create"),                 // 385
    Some("bpf"),                          // 386
    Some("execveat"),                     // 387
    Some("userfaultfd"),                  // 388
    Some("membarrier"),                   // 389
    Some("mlock2"),                       // 390
    Some("copy_file_range"),              // 391
    Some("preadv2"),                      // 392
    Some("pwritev2"),                     // 393
    Some("pkey_mprotect"),                // 394
    Some("pkey_alloc"),                   // 395
    Some("pkey_free"),                    // 396
    Some("statx"),                        // 397
    Some("rseq"),                         // 398
    Some("io_pgetevents"),                // 399
    Some("migrate_pages"),                // 400
    Some("kexec_file_load"),              // 401
    None,                                 // 402
    Some("clock_gettime64"),              // 403
    Some("clock_settime64"),              // 404
    Some("clock_adjtime64"),              // 405
    Some("clock_getres_time64"),          // 406
    Some("clock_nanosleep_time64"),       // 407
    Some("timer_gettime64"),              // 408
    Some("timer_settime64"),              // 409
    Some("timerfd_gettime64"),            // 410
    Some("timerfd_settime64"),            // 411
    Some("utimensat_time64"),             // 412
    Some("pselect6_time64"),              // 413
    Some("ppoll_time64"),                 // 414
    None,                                 // 415
    Some("io_pgetevents_time64"),         // 416
    Some("recvmmsg_time64"),              // 417
    Some("mq_timedsend_time64"),          // 418
    Some("mq_timedreceive_time64"),       // 419
    Some("semtimedop_time64"),            // 420
    Some("rt_sigtimedwait_time64"),       // 421
    Some("futex_time64"),                 // 422
    Some("sched_rr_get_interval_time64"), // 423
    Some("pidfd_send_signal"),            // 424
    Some("io_uring_setup"),               // 425
    Some("io_uring_enter"),               // 426
    Some("io_uring_register"),            // 427
    Some("open_tree"),                    // 428
    Some("move_mount"),                   // 429
    Some("fsopen"),                       // 430
    Some("fsconfig"),                     // 431
    Some("fsmount"),                      // 432
    Some("fspick"),                       // 433
    Some("pidfd_open"),                   // 434
    Some("clone3"),                       // 435
    Some("close_range"),                  // 436
    Some("openat2"),                      // 437
    Some("pidfd_getfd"),                  // 438
    Some("faccessat2"),                   // 439
    Some("process_madvise"),              // 440
    Some("epoll_pwait2"),                 // 441
    Some("mount_setattr"),                // 442
    Some("quotactl_fd"),                  // 443
    Some("landlock_create_ruleset"),      // 444
    Some("landlock_add_rule"),            // 445
    Some("landlock_restrict_self"),       // 446
    None,                                 // 447
    Some("process_mrelease"),             // 448
    Some("futex_waitv"),                  // 449
    Some("set_mempolicy_home_node"),      // 450
];

/// The private ARM syscalls, `__ARM_NR_BASE + 1 ..= + 6`.
pub static ARM_PRIVATE: [(u32, &str); 6] = [
    (ARM_PRIVATE_BASE + 1, "breakpoint"),
    (ARM_PRIVATE_BASE + 2, "cacheflush"),
    (ARM_PRIVATE_BASE + 3, "usr26"),
    (ARM_PRIVATE_BASE + 4, "usr32"),
    (ARM_PRIVATE_BASE + 5, "set_tls"),
    (ARM_PRIVATE_BASE + 6, "get_tls"),
];

/// Where a syscall number falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A number of the Linux table with a name.
    Linux,
    /// A private ARM syscall (from 0xf0000).
    ArmPrivate,
    /// Anything else: past the table, in one of its gaps, or an unknown private number.
    Unknown,
}

/// The class of syscall number `n`.
pub fn class(n: u32) -> Class {
    if name(n).is_none() {
        Class::Unknown
    } else if n >= ARM_PRIVATE_BASE {
        Class::ArmPrivate
    } else {
        Class::Linux
    }
}

/// The name of syscall number `n` (private ARM syscalls without the `__ARM_NR_` prefix).
pub fn name(n: u32) -> Option<&'static str> {
    if n >= ARM_PRIVATE_BASE {
        return ARM_PRIVATE.iter().find(|(v, _)| *v == n).map(|(_, s)| *s);
    }
    NAMES.get(n as usize).copied().flatten()
}

/// The number of the Linux syscall called `name` (the table's or the private ones').
pub fn number(name: &str) -> Option<u32> {
    if let Some(i) = NAMES.iter().position(|s| *s == Some(name)) {
        return u32::try_from(i).ok();
    }
    ARM_PRIVATE
        .iter()
        .find(|(_, s)| *s == name)
        .map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_numbers() {
        assert_eq!(name(1), Some("exit"));
        assert_eq!(name(4), Some("write"));
        assert_eq!(name(20), Some("getpid"));
        assert_eq!(name(248), Some("exit_group"));
        assert_eq!(name(398), Some("rseq"));
        assert_eq!(name(450), Some("set_mempolicy_home_node"));
        assert_eq!(name(7), None, "waitpid is OABI-only");
        assert_eq!(name(451), None);
        assert_eq!(name(0xf0005), Some("set_tls"));
        assert_eq!(number("exit_group"), Some(248));
        assert_eq!(number("set_tls"), Some(0xf0005));
        assert_eq!(class(0xf0005), Class::ArmPrivate);
        assert_eq!(class(0xf0007), Class::Unknown);
        assert_eq!(class(451), Class::Unknown);
        assert_eq!(class(0), Class::Linux);
    }
}
