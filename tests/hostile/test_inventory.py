"""Inventory strictness (items 0b, 5): names injective as file names, finite positive numbers, hostile YAML
refused with file:line, and a random or truncated inventory gives a ConfigError, never another exception."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.inventory import load_inventory
from agent.yamlsrc import ConfigError

HEAD = "version: 1\nscope: {allow: [127.0.0.0/8]}\n"


def inv(body: str) -> str:
    return HEAD + body


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_inventory("inv.yml", text)
    return e.value


@pytest.mark.parametrize("other", ["web1_", "web1.", "WEB1", "Web1", "web1-", "_web1", ".web1", "web1\n",
                                   "web1/..", "../web1", "web1 ", "wéb1", "nul", "COM1.lan", ""])
def test_names_that_would_collide_or_escape_are_refused(other):
    e = refused(inv(f"hosts:\n  - {{name: web1, transport: local}}\n  - name: {other!r}\n    transport: local\n"
                    .replace("'", '"')))
    assert e.path == "inv.yml" and e.line in (4, 5) and e.key == "hosts[1].name", str(e)


def test_case_insensitive_duplicate_names_the_first_line():
    e = refused(inv("hosts:\n  - {name: Web-1, transport: local}\n  - {name: wEB-1, transport: local}\n"))
    assert "differs only in letter case" in str(e) and "first on line 4" in str(e) and e.line == 5


def test_accepted_names_are_their_own_file_names():
    from collectors.bundle import safe_component

    names = ["a", "web-1", "db.prod_2", "A9", "x" * 63, "1.2.3.4"]
    body = "hosts:\n" + "".join(f"  - {{name: {n}, transport: local}}\n" for n in names)
    i = load_inventory("inv.yml", inv(body))
    assert [h.name for h in i.hosts] == names
    assert all(safe_component(n) == n for n in names)


@pytest.mark.parametrize("name", ["../x", "a/b", "net..", "Net", ""])
def test_network_names_are_checked_like_host_names(name):
    e = refused(inv(f"networks:\n  - {{name: net, cidr: 127.0.0.0/30}}\n  - {{name: '{name}', cidr: 127.0.1.0/30}}\n"))
    assert e.key == "networks[1].name" and e.line == 5


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "-5", "0", "1e9", "'10'", "true"])
@pytest.mark.parametrize("key", ["host", "connect", "command"])
def test_timeouts_finite_positive_bounded(key, value):
    e = refused(inv(f"defaults:\n  timeouts:\n    {key}: {value}\n"))
    assert e.key == f"defaults.timeouts.{key}" and e.line == 5


@pytest.mark.parametrize("section", ["nmap: {overall_timeout: .inf}", "tls_options: {network_timeout: .nan}",
                                     "defaults: {ssh: {connect_timeout: -1}}"])
def test_other_timeouts_refused(section):
    assert "timeout" in refused(inv(section + "\n")).key


def test_billion_laughs_is_a_clear_error():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    e = refused(inv("policy:\n  params:\n" + "".join(f"    {x}\n" for x in lines)))
    assert "aliases expand to more than" in str(e) and e.path == "inv.yml"


def test_recursive_alias_and_deep_nesting_are_clear_errors():
    assert "refers to its own anchor" in str(refused(inv("policy: &p {params: *p}\n")))
    assert "levels deep" in str(refused(inv("policy: " + "[" * 500 + "]" * 500 + "\n")))


@pytest.mark.parametrize("addr", ["127.0.0.1\U0002fffe", "bad name", "x" * 300, "a..b", "-a"])
def test_addresses_that_are_not_names_are_refused_before_resolving(addr):
    e = refused(inv(f"hosts:\n  - name: h\n    address: \"{addr}\"\n"))
    assert e.key == "hosts[0].address" and "not an IP address or host name" in str(e)


def test_small_aliases_still_work():
    i = load_inventory("inv.yml", inv("defaults:\n  ssh: &s {port: 2222}\nhosts:\n"
                                      "  - {name: a, address: 127.0.0.1, ssh: *s}\n"))
    assert i.hosts[0].ssh.port == 2222


VALID = inv("""defaults:
  ssh: {user: root, port: 22, host_key_policy: strict}
  timeouts: {connect: 5, host: 60}
hosts:
  - name: web-1
    address: 127.0.0.1
    roles: [web]
    declare: {compensating_controls: [waf]}
networks:
  - {name: lo, cidr: 127.0.0.0/30}
tls:
  - {host: 127.0.0.1, port: 443}
web:
  - http://127.0.0.1:8080/
""")


def _no_dns(host, *args, **kw):
    """Fuzzed inventories hold fuzzed host names: no name may reach a real resolver (network safety), so
    resolution of anything but an IP literal fails as an unresolvable name would (a named fake)."""
    import ipaddress
    import socket

    ipaddress.ip_address(host)  # ValueError for names: turned into gaierror below
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, 0))]


def _load_offline(text):
    import socket
    from unittest import mock

    def fake(host, *a, **kw):
        try:
            return _no_dns(host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "fake resolver: names are not resolved in this test")

    with mock.patch("socket.getaddrinfo", fake):
        return load_inventory("inv.yml", text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(VALID)), junk=st.text(max_size=20),
       at=st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_or_spliced_inventory_never_raises_anything_else(cut, junk, at):
    text = VALID[:cut]
    text = text[:at] + junk + text[at:]
    try:
        _load_offline(text)
    except ConfigError as e:
        assert str(e).startswith("inv.yml")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text_inventory(text):
    try:
        _load_offline(text)
    except ConfigError:
        pass


def test_bundle_writer_refuses_to_overwrite(tmp_path):
    from collectors.bundle import BundleWriter

    w = BundleWriter(str(tmp_path / "b"))
    w.create()
    w.write_json("facts/web1.json", {"a": 1})
    with pytest.raises(FileExistsError):
        w.write_json("facts/web1.json", {"a": 2})
    with pytest.raises(FileExistsError):
        w.write_json("facts/WEB1.json", {"a": 3})  # one file once unpacked on macOS or Windows
    w2 = BundleWriter(str(tmp_path / "b"))  # another writer, same folder: the file on disk is not replaced
    with pytest.raises(FileExistsError):
        w2.write_bytes("facts/web1.json", b"{}")
    assert (tmp_path / "b" / "facts" / "web1.json").read_text().strip() == '{\n  "a": 1\n}'
    assert sorted(p.name for p in (tmp_path / "b" / "facts").iterdir()) == ["web1.json"]  # no temp file left
