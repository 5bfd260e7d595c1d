import { describe, expect, test } from '@jest/globals';
import { assertOldestClaim, checkPortsFree, portChains, setupForwarding, teardownForwarding, type ForwardedPort } from '../../../src/net/portfwd.js';
import { FakeHost } from '../../helpers/fake-host.js';

const UUID = '0badcafe-1111-2222-3333-444455556666';
const chains = portChains(UUID);
const HTTP: ForwardedPort = { name: 'http', hostPort: 8080, podPort: 80, protocol: 'tcp' };
const DNS: ForwardedPort = { name: 'dns', hostIP: '192.0.2.2', hostPort: 5353, podPort: 53, protocol: 'udp' };

const TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
function tcpLine(hexAddr: string, port: number, state: string): string {
  return `   0: ${hexAddr}:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n`;
}

function iptablesCalls(host: FakeHost): string[] {
  return host.calls.filter((c) => c.startsWith('exec iptables'));
}

describe('port forwarding', () => {
  test('chain names use the first 8 characters of the pod UUID', () => {
    expect(chains).toEqual({ dnat: 'RKT-PFWD-DNAT-0badcafe', snat: 'RKT-PFWD-SNAT-0badcafe', local: 'RKT-PFWD-LOCAL-0badcafe' });
  });

  test('setup: the 127.0.0.0/8 drop rule for each host interface, chains, DNAT and SNAT rules, then the jumps, route_localnet on the host veth', async () => {
    const host = new FakeHost();
    await setupForwarding(host, chains, '172.16.28.5', ['veth0a1b', 'rkt0'], [HTTP, DNS]);
    const W = 'exec iptables --wait -t nat';
    const F = 'exec iptables --wait';
    expect(host.calls).toEqual([
      `${F} -N RKT-PFWD-LOCAL-0badcafe`,
      `${F} -A RKT-PFWD-LOCAL-0badcafe -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      `${F} -I INPUT 1 -i veth0a1b -j RKT-PFWD-LOCAL-0badcafe`,
      `${F} -I INPUT 1 -i rkt0 -j RKT-PFWD-LOCAL-0badcafe`,
      `${W} -N RKT-PFWD-DNAT-0badcafe`,
      `${W} -N RKT-PFWD-SNAT-0badcafe`,
      `${W} -A RKT-PFWD-DNAT-0badcafe -d 0.0.0.0/0 -p tcp --dport 8080 -j DNAT --to-destination 172.16.28.5:80`,
      `${W} -A RKT-PFWD-SNAT-0badcafe -p tcp -s 127.0.0.1 -d 172.16.28.5 --dport 80 -j MASQUERADE`,
      `${W} -A RKT-PFWD-DNAT-0badcafe -d 192.0.2.2 -p udp --dport 5353 -j DNAT --to-destination 172.16.28.5:53`,
      `${W} -A RKT-PFWD-SNAT-0badcafe -p udp -s 127.0.0.1 -d 172.16.28.5 --dport 53 -j MASQUERADE`,
      `${W} -I POSTROUTING 1 -s 127.0.0.1 ! -d 127.0.0.1 -j RKT-PFWD-SNAT-0badcafe`,
      `${W} -I PREROUTING 1 -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0badcafe`,
      `${W} -I OUTPUT 1 -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0badcafe`,
      'write /proc/sys/net/ipv4/conf/veth0a1b/route_localnet 1',
      'write /proc/sys/net/ipv4/conf/rkt0/route_localnet 1',
    ]);
  });

  test('no route_localnet without its drop rule: a failing filter rule stops the setup first', async () => {
    const host = new FakeHost();
    host.execHandler = (c) => (c.args.includes('INPUT') ? { code: 1, stdout: '', stderr: "iptables: Couldn't load match `conntrack'\n" } : { code: 0, stdout: '', stderr: '' });
    await expect(setupForwarding(host, chains, '172.16.28.5', ['veth0a1b'], [HTTP])).rejects.toThrow(/conntrack/);
    expect(host.calls.some((c) => c.includes('route_localnet'))).toBe(false);
    expect(host.calls.some((c) => c.includes('-t nat'))).toBe(false);
  });

  test('setup stops at the first iptables failure with a one-line error', async () => {
    const host = new FakeHost();
    host.execHandler = (c) => (c.args.includes('OUTPUT') ? { code: 1, stdout: '', stderr: "iptables: Couldn't load match `addrtype'\n" } : { code: 0, stdout: '', stderr: '' });
    await expect(setupForwarding(host, chains, '172.16.28.5', ['veth0a1b'], [HTTP])).rejects.toThrow(
      "port forwarding: iptables -I OUTPUT 1 -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0badcafe failed: iptables: Couldn't load match `addrtype'",
    );
    expect(iptablesCalls(host)).toHaveLength(10);
  });

  test('teardown deletes jumps and chains and swallows errors', async () => {
    const host = new FakeHost();
    host.execHandler = () => ({ code: 1, stdout: '', stderr: 'iptables: No chain/target/match by that name.' });
    await teardownForwarding(host, chains);
    const W = 'exec iptables --wait -t nat';
    expect(host.calls).toEqual([
      `${W} -D POSTROUTING -s 127.0.0.1 ! -d 127.0.0.1 -j RKT-PFWD-SNAT-0badcafe`,
      `${W} -D PREROUTING -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0badcafe`,
      `${W} -D OUTPUT -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-0badcafe`,
      `${W} -F RKT-PFWD-DNAT-0badcafe`,
      `${W} -X RKT-PFWD-DNAT-0badcafe`,
      `${W} -F RKT-PFWD-SNAT-0badcafe`,
      `${W} -X RKT-PFWD-SNAT-0badcafe`,
      'exec iptables --wait -S INPUT',
      'exec iptables --wait -F RKT-PFWD-LOCAL-0badcafe',
      'exec iptables --wait -X RKT-PFWD-LOCAL-0badcafe',
    ]);
  });

  test('teardown removes its INPUT jumps and puts route_localnet back on interfaces that outlive the pod, unless another pod forwards through them', async () => {
    const host = new FakeHost();
    const input = [
      '-P INPUT ACCEPT',
      '-A INPUT -i rkt0 -j RKT-PFWD-LOCAL-0badcafe',
      '-A INPUT -i veth0a1b -j RKT-PFWD-LOCAL-0badcafe',
      '-A INPUT -i cni1 -j RKT-PFWD-LOCAL-0badcafe',
      '-A INPUT -i cni1 -j RKT-PFWD-LOCAL-12345678',
    ].join('\n');
    host.execHandler = (c) => ({ code: 0, stdout: c.args.includes('-S') ? input : '', stderr: '' });
    // veth0a1b went with the pod's netns; the bridges rkt0 and cni1 stay.
    for (const i of ['rkt0', 'cni1']) host.files.set(`/proc/sys/net/ipv4/conf/${i}/route_localnet`, '1');
    host.calls = [];
    await teardownForwarding(host, chains);
    const F = 'exec iptables --wait';
    expect(host.calls.filter((c) => !c.includes('-t nat'))).toEqual([
      `${F} -S INPUT`,
      `${F} -D INPUT -i rkt0 -j RKT-PFWD-LOCAL-0badcafe`,
      `${F} -D INPUT -i veth0a1b -j RKT-PFWD-LOCAL-0badcafe`,
      `${F} -D INPUT -i cni1 -j RKT-PFWD-LOCAL-0badcafe`,
      `${F} -F RKT-PFWD-LOCAL-0badcafe`,
      `${F} -X RKT-PFWD-LOCAL-0badcafe`,
      'write /proc/sys/net/ipv4/conf/rkt0/route_localnet 0',
    ]);
  });

  test('teardown of a record from before the drop rule touches only the nat table', async () => {
    const host = new FakeHost();
    await teardownForwarding(host, { dnat: chains.dnat, snat: chains.snat });
    expect(host.calls.every((c) => c.startsWith('exec iptables --wait -t nat'))).toBe(true);
  });
});

describe('checkPortsFree', () => {
  function hostWithRules(rules: string): FakeHost {
    const host = new FakeHost();
    host.execHandler = (c) => ({ code: 0, stdout: c.args.includes('-S') ? rules : '', stderr: '' });
    return host;
  }

  test('a port forwarded by another pod is refused', async () => {
    const host = hostWithRules('-P PREROUTING ACCEPT\n-N RKT-PFWD-DNAT-12345678\n'
      + '-A RKT-PFWD-DNAT-12345678 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.16.28.3:80\n');
    await expect(checkPortsFree(host, chains, [HTTP])).rejects.toThrow('port 8080 is already in use by pod 12345678: choose another --port');
    expect(host.calls).toContain('exec iptables --wait -t nat -S');
  });

  test('other protocols, other ports, our own chain, and different host IPs do not clash', async () => {
    const host = hostWithRules(
      '-A RKT-PFWD-DNAT-12345678 -p udp -m udp --dport 8080 -j DNAT --to-destination 172.16.28.3:80\n'
      + '-A RKT-PFWD-DNAT-12345678 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.16.28.3:80\n'
      + '-A RKT-PFWD-DNAT-0badcafe -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.16.28.5:80\n'
      + '-A RKT-PFWD-DNAT-87654321 -d 192.0.2.9/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.16.28.4:53\n',
    );
    await expect(checkPortsFree(host, chains, [HTTP, DNS])).resolves.toBeUndefined();
  });

  test('the same host IP clashes; a wildcard clashes with a specific IP', async () => {
    const rule = '-A RKT-PFWD-DNAT-87654321 -d 192.0.2.2/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.16.28.4:53\n';
    await expect(checkPortsFree(hostWithRules(rule), chains, [DNS])).rejects.toThrow('port 5353 is already in use by pod 87654321');
    await expect(checkPortsFree(hostWithRules(rule), chains, [{ ...DNS, hostIP: undefined }])).rejects.toThrow('already in use by pod 87654321');
  });

  test('a port a host process listens on is refused', async () => {
    const host = hostWithRules('');
    host.files.set('/proc/net/tcp', TCP_HEADER + tcpLine('0100007F', 8080, '0A'));
    await expect(checkPortsFree(host, chains, [HTTP])).rejects.toThrow('port 8080 is already in use by another process: choose another --port');
  });

  test('IPv6 listeners, UDP sockets and listeners on the chosen host IP clash too', async () => {
    const host = hostWithRules('');
    host.files.set('/proc/net/tcp6', TCP_HEADER + tcpLine('00000000000000000000000000000000', 8080, '0A'));
    await expect(checkPortsFree(host, chains, [HTTP])).rejects.toThrow('port 8080 is already in use by another process');
    host.files.delete('/proc/net/tcp6');
    host.files.set('/proc/net/udp', TCP_HEADER + tcpLine('020200C0', 5353, '07'));
    await expect(checkPortsFree(host, chains, [DNS])).rejects.toThrow('port 5353 is already in use by another process');
  });

  test('established connections, other ports and other specific addresses are fine', async () => {
    const host = hostWithRules('');
    host.files.set('/proc/net/tcp', TCP_HEADER + tcpLine('0100007F', 8080, '01') + tcpLine('00000000', 8081, '0A'));
    host.files.set('/proc/net/udp', TCP_HEADER + tcpLine('0100007F', 5353, '07'));
    await expect(checkPortsFree(host, chains, [HTTP, DNS])).resolves.toBeUndefined();
  });

  test('the same host port twice in one run', async () => {
    await expect(checkPortsFree(hostWithRules(''), chains, [HTTP, { ...HTTP, name: 'other', podPort: 81 }])).rejects.toThrow(
      'port 8080 is forwarded twice',
    );
  });
});

describe('assertOldestClaim (pods that passed checkPortsFree at the same time)', () => {
  const jump = (id: string) => `-A PREROUTING -m addrtype --dst-type LOCAL -j RKT-PFWD-DNAT-${id}\n`;
  const rule = (id: string, port: number) => `-A RKT-PFWD-DNAT-${id} -p tcp -m tcp --dport ${port} -j DNAT --to-destination 172.16.28.3:80\n`;
  function hostWith(listing: string): FakeHost {
    const host = new FakeHost();
    host.execHandler = (c) => ({ code: 0, stdout: c.args.includes('-S') ? listing : '', stderr: '' });
    return host;
  }

  test('a clashing pod whose jump is below ours forwarded first: we lose', async () => {
    const host = hostWith(jump('0badcafe') + jump('12345678') + rule('0badcafe', 8080) + rule('12345678', 8080));
    await expect(assertOldestClaim(host, chains, [HTTP])).rejects.toThrow('port 8080 is already in use by pod 12345678: choose another --port');
  });

  test('a clashing pod whose jump is above ours, or not there yet, loses in its own check: we keep the port', async () => {
    await expect(assertOldestClaim(hostWith(jump('12345678') + jump('0badcafe') + rule('0badcafe', 8080) + rule('12345678', 8080)), chains, [HTTP]))
      .resolves.toBeUndefined();
    await expect(assertOldestClaim(hostWith(jump('0badcafe') + rule('0badcafe', 8080) + rule('12345678', 8080)), chains, [HTTP]))
      .resolves.toBeUndefined();
  });

  test('older pods forwarding other ports do not clash', async () => {
    const host = hostWith(jump('0badcafe') + jump('12345678') + rule('0badcafe', 8080) + rule('12345678', 8081));
    await expect(assertOldestClaim(host, chains, [HTTP])).resolves.toBeUndefined();
  });
});
