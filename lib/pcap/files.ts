// The capture files of `afxdp fwd --pcap FILE`: FILE itself for one port on
// one forwarding thread; otherwise one file per port and per thread, named
// FILE with `-p<port>` and `-t<thread>` before its extension
// (cap.pcap → cap-p0.pcap, cap-p1.pcap; cap-t0.pcap, cap-t1.pcap;
// cap-p1-t0.pcap). Classic pcap has no interface field, so packets of two
// ports in one file could not be told apart; a writer belongs to one thread.
import path from 'node:path';

export function captureFile(file: string, port: number, ports: number, thread: number, threads: number): string {
  const parts: string[] = [];
  if (ports > 1) parts.push(`p${port}`);
  if (threads > 1) parts.push(`t${thread}`);
  if (parts.length === 0) return file;
  const ext = path.extname(file);
  const stem = ext === '' ? file : file.slice(0, -ext.length);
  return `${stem}-${parts.join('-')}${ext}`;
}
