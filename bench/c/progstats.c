// progstats ID: the kernel's run statistics of BPF program ID as one JSON
// line, {"name":..,"run_cnt":..,"run_time_ns":..}. They count only while
// kernel.bpf_stats_enabled=1. Raw bpf(2), no libbpf (like the other tools).
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: progstats PROG_ID\n"); return 2; }
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_id = (unsigned)strtoul(argv[1], NULL, 10);
  int fd = (int)bpf(BPF_PROG_GET_FD_BY_ID, &a);
  if (fd < 0) { perror("BPF_PROG_GET_FD_BY_ID"); return 1; }
  struct bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  memset(&a, 0, sizeof(a));
  a.info.bpf_fd = fd;
  a.info.info_len = sizeof(info);
  a.info.info = (unsigned long)&info;
  if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0) { perror("BPF_OBJ_GET_INFO_BY_FD"); return 1; }
  printf("{\"name\":\"%s\",\"run_cnt\":%llu,\"run_time_ns\":%llu}\n", info.name,
         (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
  close(fd);
  return 0;
}
