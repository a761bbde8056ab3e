"""Host probes parsed from recorded/written fixtures (tests/fixtures/host/<distro>/), table-driven.

Each row: (distro, probe, JMESPath expression on the fact's data, expected value) — the way
policies will read facts. Status rows use the pseudo-expression ``@status``.
"""

from __future__ import annotations

import json

import jmespath
import pytest

from host_fixture_loader import distros, load
from probes.base import FactStatus
from probes.host import PROBES, by_name
from policies.expr import bind_params, evaluate
from policies.model import load_profile

COLLECTED, PARTIAL, NOT_COLLECTED = "collected", "partial", "not_collected"

EXPECTED: list[tuple[str, str, str, object]] = [
    # --- Ubuntu 22.04: web + local DB, ufw, ClamAV, MFA -----------------------------------
    ("ubuntu2204", "os", "@status", COLLECTED),
    ("ubuntu2204", "os", "id", "ubuntu"),
    ("ubuntu2204", "os", "version_id", "22.04"),
    ("ubuntu2204", "os", "family", "debian"),
    ("ubuntu2204", "os", "version", None),  # /etc/debian_version ("bookworm/sid") is not Ubuntu's version
    ("ubuntu2204", "os", "kernel", "5.15.0-91-generic"),
    ("ubuntu2204", "os", "uptime_seconds", 864000),
    ("ubuntu2204", "os", "boot_time", "2026-11-13T00:00:00Z"),
    ("ubuntu2204", "os", "eol_date", "2027-04-01"),
    ("ubuntu2204", "os", "eol", False),
    ("ubuntu2204", "os", "support_phase", "regular"),
    ("ubuntu2204", "os", "security_sources", ["jammy-security (http://security.ubuntu.com/ubuntu/)"]),
    ("ubuntu2204", "os", "extended_enrolled", False),  # pro client, no token, no ESM suite: not attached
    ("ubuntu2204", "os", "update_sources[?source=='deb https://mirror.example.internal/nginx/ubuntu jammy'].security | [0]", False),
    ("ubuntu2204", "patch", "security_index", True),
    ("ubuntu2204", "os", "extended_support_end", "2032-04-09"),
    ("ubuntu2204", "patch", "@status", COLLECTED),
    ("ubuntu2204", "patch", "manager", "apt"),
    ("ubuntu2204", "patch", "pending_total", 6),
    ("ubuntu2204", "patch", "pending_security", 4),
    ("ubuntu2204", "patch", "pending[?name=='openssl'].origin | [0]", "jammy-updates,jammy-security"),
    ("ubuntu2204", "patch", "pending[?name=='sudo'].security | [0]", True),
    ("ubuntu2204", "patch", "pending[?name=='tzdata'].security | [0]", False),
    ("ubuntu2204", "patch", "pending[?name=='libssl3'].from_version | [0]", "3.0.2-0ubuntu1.15"),
    ("ubuntu2204", "patch", "index_age_days", 0),
    ("ubuntu2204", "patch", "last_update", "2026-11-09T21:31:05Z"),  # dpkg.log is local time (+0900)
    ("ubuntu2204", "patch", "days_since_update", 13),
    ("ubuntu2204", "patch", "reboot_required", True),
    (
        "ubuntu2204",
        "patch",
        "reboot_signals",
        {"flag_file": True, "needs_restarting": None, "newer_kernel_installed": True},
    ),
    ("ubuntu2204", "patch", "newest_installed_kernel", "5.15.0-94-generic"),
    ("ubuntu2204", "patch", "components.openssl", "3.0.2-0ubuntu1.15"),
    ("ubuntu2204", "patch", "components.openssh", "1:8.9p1-3ubuntu0.6"),
    ("ubuntu2204", "patch", "components.nginx", "1.18.0-6ubuntu14.4"),
    ("ubuntu2204", "patch", "components.mysql", "8.0.36-0ubuntu0.22.04.1"),
    ("ubuntu2204", "antivirus", "any_running", True),
    ("ubuntu2204", "antivirus", "products[0].name", "ClamAV"),
    ("ubuntu2204", "antivirus", "products[0].realtime", False),
    ("ubuntu2204", "antivirus", "products[0].scheduled_scan", True),
    ("ubuntu2204", "antivirus", "products[0].signature_date", "2026-11-22T08:31:00Z"),
    ("ubuntu2204", "antivirus", "products[0].signature_age_days", 0),
    ("ubuntu2204", "listening", "@status", COLLECTED),
    ("ubuntu2204", "listening", "tcp_ports", [22, 53, 80, 443, 3306, 33060]),
    ("ubuntu2204", "listening", "exposed_tcp_ports", [22, 80, 443]),
    ("ubuntu2204", "listening", "sockets[?port==`3306`].process | [0]", "mysqld"),
    ("ubuntu2204", "listening", "sockets[?port==`53` && proto=='tcp'].interface | [0]", "lo"),
    ("ubuntu2204", "listening", "matching_services(sockets, params.insecure_services)[].service", ["snmp"]),
    ("ubuntu2204", "listening", "snmp.default_community", True),
    ("ubuntu2204", "listening", "web_role", True),
    ("ubuntu2204", "listening", "db_on_web_host", True),
    ("ubuntu2204", "interfaces", "all_private", True),
    ("ubuntu2204", "interfaces", "private_addresses", ["10.0.1.15", "172.17.0.1"]),
    ("ubuntu2204", "interfaces", "interfaces[?name=='docker0'].up | [0]", True),
    ("ubuntu2204", "interfaces", "interfaces[?name=='ens5'].mac | [0]", "0a:ff:3a:21:1b:2c"),
    ("ubuntu2204", "interfaces", "default_routes[0].gateway", "10.0.1.1"),
    ("ubuntu2204", "interfaces", "wireless", []),
    ("ubuntu2204", "firewall", "active", True),
    ("ubuntu2204", "firewall", "frontend", "ufw"),
    ("ubuntu2204", "firewall", "default_input_policy", "drop"),
    ("ubuntu2204", "firewall", "rule_count", 16),  # iptables-nft: counted once, in the nftables view
    ("ubuntu2204", "firewall", "ufw.rules", 4),
    ("ubuntu2204", "firewall", "iptables.ipv4.policies.INPUT", "DROP"),
    ("ubuntu2204", "remote_admin", "ssh.permit_root_login", "no"),
    ("ubuntu2204", "remote_admin", "ssh.password_authentication", False),
    ("ubuntu2204", "remote_admin", "ssh.mfa", True),
    ("ubuntu2204", "remote_admin", "contains(ssh.mfa_methods, 'pam_google_authenticator.so')", True),
    ("ubuntu2204", "remote_admin", "matching(ssh.macs, params.weak_macs)", []),
    ("ubuntu2204", "remote_admin", "ssh.allow_groups", ["sshusers"]),
    ("ubuntu2204", "remote_admin", "services[?service != 'ssh' && (running || listening || enabled || via_inetd)].service", []),
    ("ubuntu2204", "accounts", "@status", COLLECTED),
    ("ubuntu2204", "accounts", "uid0_non_root", ["svcadmin"]),
    ("ubuntu2204", "accounts", "empty_password", ["test"]),
    ("ubuntu2204", "accounts", "generic_accounts", ["test"]),
    ("ubuntu2204", "accounts", "duplicate_uids[0].names", ["root", "svcadmin"]),
    ("ubuntu2204", "accounts", "accounts[?name=='ubuntu'].hash_algo | [0]", "yescrypt"),
    ("ubuntu2204", "accounts", "accounts[?name=='deploy'].hash_algo | [0]", "sha512"),
    ("ubuntu2204", "accounts", "accounts[?name=='deploy'].last_login_days | [0]", 199),
    ("ubuntu2204", "accounts", "accounts[?name=='deploy'].last_login_from | [0]", "10.0.9.21"),
    ("ubuntu2204", "accounts", "accounts[?name=='deploy'].admin | [0]", True),  # sudoers NOPASSWD
    ("ubuntu2204", "accounts", "accounts[?name=='ubuntu'].last_login | [0]", "2026-11-16T01:20:30Z"),
    ("ubuntu2204", "accounts", "accounts[?name=='oldadmin'].password_state | [0]", "locked"),
    ("ubuntu2204", "accounts", "accounts[?name=='oldadmin'].last_login_days | [0]", 681),
    ("ubuntu2204", "accounts", "accounts[?name=='svcadmin'].password_expired | [0]", True),
    ("ubuntu2204", "accounts", "accounts[?name=='svcadmin'].expires | [0]", "2027-03-23"),
    ("ubuntu2204", "accounts", "accounts[?name=='kim'].account_never_expires | [0]", True),  # 9999-12-31
    ("ubuntu2204", "accounts", "accounts[?name=='kim'].expires | [0]", None),
    ("ubuntu2204", "accounts", "accounts[?name=='kim'].last_login_days | [0]", 0),
    ("ubuntu2204", "accounts", "sudoers[?nopasswd].principal", ["deploy"]),
    ("ubuntu2204", "accounts", "admin_groups.sudo", ["ubuntu", "kim"]),
    ("ubuntu2204", "accounts", "policy.inactive_days", 35),
    ("ubuntu2204", "password_policy", "hash.algorithms", {"yescrypt": 4, "sha512": 1}),
    ("ubuntu2204", "password_policy", "hash.pam_unix_method", "yescrypt"),
    ("ubuntu2204", "password_policy", "quality.module", "pam_pwquality"),
    ("ubuntu2204", "password_policy", "quality.minlen", 12),
    ("ubuntu2204", "password_policy", "quality.retry", 3),
    ("ubuntu2204", "password_policy", "quality.enforce_for_root", True),
    ("ubuntu2204", "password_policy", "history.remember", 5),
    (
        "ubuntu2204",
        "password_policy",
        "lockout",
        {
            "module": "pam_faillock",
            "deny": 5,
            "unlock_time": 900,
            "fail_interval": None,
            "even_deny_root": False,
            "root_unlock_time": None,
        },
    ),
    ("ubuntu2204", "logging_time", "syslog.daemon", "rsyslog"),
    ("ubuntu2204", "logging_time", "syslog.remote_targets", ["logs.example.internal:514"]),
    ("ubuntu2204", "logging_time", "syslog_retention_days", 28),
    ("ubuntu2204", "logging_time", "journald.span_days", 108),
    ("ubuntu2204", "logging_time", "journald.disk_usage", "1.1G"),
    ("ubuntu2204", "logging_time", "observed[?log=='/var/log/auth.log'].files | [0]", 5),
    ("ubuntu2204", "logging_time", "time.service", "systemd-timesyncd"),
    ("ubuntu2204", "logging_time", "time.synchronized", True),
    ("ubuntu2204", "logging_time", "time.sync_source", "timedatectl"),
    ("ubuntu2204", "logging_time", "time.servers", ["time.bora.net", "time.kriss.re.kr"]),
    ("ubuntu2204", "logging_time", "auditd.installed", False),
    # --- Ubuntu 20.04: past standard support, ESM security origin, weak SSH --------------------
    ("ubuntu2004", "os", "eol", True),
    ("ubuntu2004", "os", "extended_eol", False),
    ("ubuntu2004", "os", "support_phase", "extended"),
    ("ubuntu2004", "os", "extended_needs_enrolment", True),
    ("ubuntu2004", "os", "extended_enrolled", True),  # pro status: esm-infra enabled, ESM suites configured
    ("ubuntu2004", "os", "update_sources[?extended].source | length(@)", 4),
    ("ubuntu2004", "patch", "pending_total", 3),
    ("ubuntu2004", "patch", "pending_security", 2),
    ("ubuntu2004", "patch", "reboot_required", False),
    ("ubuntu2004", "patch", "components.openssl", "1.1.1f-1ubuntu2.23"),
    ("ubuntu2004", "remote_admin", "ssh.root_password_login", True),
    ("ubuntu2004", "remote_admin", "ssh.kbd_interactive_authentication", False),  # ChallengeResponse...
    ("ubuntu2004", "remote_admin", "ssh.mfa", False),
    ("ubuntu2004", "remote_admin", "matching(ssh.kex_algorithms, params.weak_kex)", ["diffie-hellman-group14-sha1"]),
    ("ubuntu2004", "firewall", "active", False),
    ("ubuntu2004", "firewall", "ufw.active", False),
    ("ubuntu2004", "firewall", "ufw.rules", None),
    ("ubuntu2004", "logging_time", "time.synchronized", False),
    # --- Ubuntu 24.04: socket-activated sshd, nothing pending -----------------------------------
    ("ubuntu2404", "os", "eol_date", "2029-05-31"),
    ("ubuntu2404", "os", "update_sources[?security].source", ["deb http://security.ubuntu.com/ubuntu/ noble-security"]),
    ("ubuntu2404", "patch", "pending_total", 0),
    ("ubuntu2404", "patch", "pending_security", 0),
    ("ubuntu2404", "patch", "reboot_required", False),
    ("ubuntu2404", "patch", "components.openssl", "3.0.13-0ubuntu3.4"),
    ("ubuntu2404", "remote_admin", "services[?service=='ssh'].listening | [0]", True),
    ("ubuntu2404", "remote_admin", "services[?service=='ssh'].running | [0]", True),
    ("ubuntu2404", "listening", "sockets[?port==`22`].process | [0]", "systemd"),
    ("ubuntu2404", "listening", "sockets[?port==`22`].family | [0]", "any"),
    ("ubuntu2404", "accounts", "policy.encrypt_method", "YESCRYPT"),
    ("ubuntu2404", "antivirus", "any_installed", False),
    ("ubuntu2404", "antivirus", "any_running", False),
    # --- Debian 11: LTS over, netstat fallback, telnet via inetd, empty nftables ----------------
    ("debian11", "os", "version", "11.9"),
    ("debian11", "os", "eol", True),
    ("debian11", "os", "extended_eol", True),
    ("debian11", "os", "support_phase", "ended"),  # Debian LTS for 11 ended 2026-08-31
    ("debian11", "os", "security_sources", ["bullseye-security (https://mirror.example.internal/debian-security)"]),
    ("debian11", "patch", "pending_security", 2),
    ("debian11", "patch", "index_age_days", 125),
    ("debian11", "patch", "reboot_required", False),
    ("debian11", "patch", "reboot_signals.flag_file", None),  # nothing writes the flag on this host
    ("debian11", "listening", "tool", "netstat"),
    ("debian11", "listening", "sockets[?port==`23`].process | [0]", "inetd"),
    ("debian11", "listening", "matching_services(sockets, params.insecure_services)[].service", ["telnet"]),
    ("debian11", "listening", "inetd_services[].service", ["telnet"]),
    ("debian11", "listening", "db_on_web_host", False),
    ("debian11", "remote_admin", "services[?service != 'ssh' && (running || listening || enabled || via_inetd)].service", ["telnet"]),
    ("debian11", "remote_admin", "services[?service=='telnet'].via_inetd | [0]", True),
    ("debian11", "firewall", "active", False),
    ("debian11", "firewall", "nftables.input_chains[0].policy", "accept"),
    ("debian11", "firewall", "iptables.available", False),
    ("debian11", "accounts", "accounts[?name=='webadm'].hash_algo | [0]", "md5"),
    ("debian11", "accounts", "accounts[?name=='guest'].account_expired | [0]", True),
    ("debian11", "password_policy", "hash.weak_hash_accounts", ["webadm"]),
    ("debian11", "password_policy", "quality.module", None),
    ("debian11", "password_policy", "lockout.module", None),
    ("debian11", "logging_time", "syslog_retention_days", 7),
    ("debian11", "logging_time", "auth_log_retention_days", 28),
    ("debian11", "logging_time", "auditd.rules", 0),
    ("debian11", "logging_time", "time.synchronized", False),
    ("debian11", "logging_time", "time.sync_source", "chronyc"),
    ("debian11", "interfaces", "private_addresses", ["192.168.10.20", "fd12:3456:789a:1::20"]),
    # --- RHEL 9: dnf + updateinfo, firewalld, Apache + PostgreSQL, public address, Falcon -------
    ("rhel9", "os", "family", "rhel"),
    ("rhel9", "os", "version", "9.4"),
    ("rhel9", "os", "eol_date", "2032-05-31"),
    ("rhel9", "os", "security_sources", ["rhel-9-for-x86_64-baseos-rpms"]),  # enabled ones only
    ("rhel9", "os", "extended_enrolled", False),  # no *-els-* repository (not needed in regular support)
    ("rhel9", "patch", "security_index", None),  # apt only
    ("rhel9", "patch", "manager", "dnf"),
    ("rhel9", "patch", "pending_total", 8),
    ("rhel9", "patch", "pending_security", 6),
    ("rhel9", "patch", "security_advisories", 3),
    ("rhel9", "patch", "pending[?name=='openssl'].to_version | [0]", "1:3.0.7-28.el9_4"),
    ("rhel9", "patch", "last_update", "2026-10-30T09:00:00Z"),
    ("rhel9", "patch", "reboot_signals.needs_restarting", True),
    ("rhel9", "patch", "components.openssl", "1:3.0.7-27.el9"),
    ("rhel9", "patch", "components.apache", "2.4.57-8.el9"),
    ("rhel9", "patch", "components.postgresql", "13.14-1.el9_3"),
    ("rhel9", "antivirus", "products[0].name", "CrowdStrike Falcon"),
    ("rhel9", "antivirus", "products[0].realtime", True),
    ("rhel9", "antivirus", "products[0].scheduled_scan", None),  # managed from the vendor console
    ("rhel9", "listening", "sockets[?port==`443`].family | [0]", "any"),
    ("rhel9", "listening", "matching_services(sockets, params.insecure_services)[].service", ["rpcbind", "rpcbind"]),
    ("rhel9", "listening", "databases[0].engine", "postgresql"),
    ("rhel9", "listening", "databases[0].loopback", False),
    ("rhel9", "listening", "db_on_web_host", True),
    ("rhel9", "interfaces", "all_private", False),
    ("rhel9", "interfaces", "public_addresses", ["52.79.10.20"]),
    ("rhel9", "interfaces", "non_private_addresses[].category", ["public"]),
    ("rhel9", "interfaces", "wireless", ["wlp2s0"]),
    ("rhel9", "interfaces", "interfaces[?name=='wlp2s0'].wireless | [0]", True),
    ("rhel9", "firewall", "active", True),
    ("rhel9", "firewall", "frontend", "firewalld"),
    ("rhel9", "firewall", "firewalld.zones[0].services", ["dhcpv6-client", "http", "https", "ssh"]),
    ("rhel9", "firewall", "nftables.input_chains[0].chain", "filter_INPUT"),
    ("rhel9", "firewall", "rule_count", 24),
    ("rhel9", "remote_admin", "ssh.root_password_login", True),
    ("rhel9", "remote_admin", "matching(ssh.ciphers, params.weak_ciphers)", ["aes256-cbc"]),
    ("rhel9", "remote_admin", "matching(ssh.macs, params.weak_macs)", ["hmac-sha1-etm@openssh.com", "hmac-sha1"]),
    ("rhel9", "remote_admin", "matching(ssh.host_key_algorithms, params.weak_host_key_algorithms)", ["ssh-rsa"]),
    ("rhel9", "accounts", "generic_accounts", ["admin"]),
    ("rhel9", "accounts", "admin_groups", {"wheel": ["admin"]}),
    ("rhel9", "accounts", "accounts[?name=='postgres'].login_shell | [0]", True),
    ("rhel9", "accounts", "accounts[?name=='postgres'].password_state | [0]", "locked"),
    ("rhel9", "accounts", "accounts[?name=='chrony'].password_state | [0]", "unknown"),  # garbled line
    ("rhel9", "accounts", "accounts[?name=='oracle'].password_expired | [0]", True),
    ("rhel9", "accounts", "accounts[?name=='root'].last_login_days | [0]", 53),
    ("rhel9", "password_policy", "quality.minlen", 15),  # pwquality.conf.d overrides pwquality.conf
    ("rhel9", "password_policy", "quality.dcredit", -1),
    ("rhel9", "password_policy", "lockout.even_deny_root", True),
    ("rhel9", "password_policy", "history.remember", 4),
    ("rhel9", "password_policy", "hash.weak_hash_accounts", ["legacy"]),
    ("rhel9", "logging_time", "syslog.remote_targets", ["10.10.0.50"]),
    ("rhel9", "logging_time", "syslog_retention_days", 28),  # global weekly x4 applies to the stanza
    ("rhel9", "logging_time", "journald.max_retention_days", 365.25),
    ("rhel9", "logging_time", "observed[?log=='/var/log/messages'].files | [0]", 5),  # dateext names
    ("rhel9", "logging_time", "auditd.rules", 4),
    ("rhel9", "logging_time", "auditd.num_logs", 5),
    ("rhel9", "logging_time", "time.reference", "10.10.0.1"),
    ("rhel9", "logging_time", "time.stratum", 3),
    ("rhel9", "logging_time", "time.offset_seconds", -2.1113e-05),
    # --- Rocky 8 / Alma 9 ------------------------------------------------------------------------
    ("rocky8", "os", "id", "rocky"),
    ("rocky8", "os", "eol_date", "2029-05-31"),
    ("rocky8", "os", "security_sources", ["baseos"]),
    ("rocky8", "os", "extended_support_end", None),  # no ELS for the rebuilds in the table
    ("rocky8", "patch", "pending_total", 4),  # wrapped long name kept, obsoletes section ignored
    ("rocky8", "patch", "pending[?starts_with(name, 'python3-libselinux')].to_version | [0]", "2.9-9.el8_10"),
    ("rocky8", "patch", "pending_security", 2),
    ("rocky8", "patch", "reboot_signals.needs_restarting", None),  # plugin missing: unknown, not "no"
    ("rocky8", "patch", "reboot_required", False),
    ("rocky8", "remote_admin", "matching(ssh.ciphers, params.weak_ciphers)", ["aes256-cbc", "aes128-cbc"]),
    (
        "rocky8",
        "remote_admin",
        "matching(ssh.kex_algorithms, params.weak_kex)",
        ["diffie-hellman-group-exchange-sha1", "diffie-hellman-group14-sha1"],
    ),
    ("alma9", "os", "id", "almalinux"),
    ("alma9", "os", "eol", False),
    ("alma9", "firewall", "active", False),
    ("alma9", "firewall", "firewalld.running", False),
    ("alma9", "firewall", "services.firewalld", {"enabled": False, "active": False}),
    ("alma9", "patch", "security_advisories", 1),
    # --- Amazon Linux 2 / 2023 -------------------------------------------------------------------
    ("amazon2", "os", "family", "amazon"),
    ("amazon2", "os", "eol_date", "2026-06-30"),
    ("amazon2", "os", "eol", True),
    ("amazon2", "os", "support_phase", "ended"),
    ("amazon2", "os", "security_sources", ["amzn2-core"]),
    ("amazon2", "patch", "manager", "yum"),
    ("amazon2", "patch", "pending_total", 4),
    ("amazon2", "patch", "pending_security", 3),
    ("amazon2", "patch", "security_advisories", 2),
    ("amazon2", "patch", "reboot_required", False),
    ("amazon2", "firewall", "active", False),
    ("amazon2", "firewall", "nftables.available", False),
    ("amazon2", "remote_admin", "ssh.permit_root_login", "forced-commands-only"),
    ("amazon2", "remote_admin", "length(matching(ssh.ciphers, params.weak_ciphers))", 6),
    ("amazon2", "accounts", "unlocked_login_accounts", []),
    ("amazon2", "accounts", "sudoers[?nopasswd].principal", ["ec2-user"]),
    ("amazon2", "logging_time", "time.reference", "169.254.169.123"),
    ("amazon2", "logging_time", "time.synchronized", True),
    ("amazon2", "logging_time", "time.ntp_enabled", True),
    ("amazon2", "listening", "sockets[?port==`22`].address", ["*", "::"]),
    ("amazon2023", "os", "eol_date", "2029-06-30"),
    ("amazon2023", "os", "security_sources", ["amazonlinux"]),  # kernel-livepatch disabled
    ("amazon2023", "os", "version", "2023.6.20241111"),
    ("amazon2023", "patch", "pending_total", 0),
    ("amazon2023", "patch", "pending_security", 0),
    ("amazon2023", "logging_time", "syslog.daemon", None),
    ("amazon2023", "logging_time", "journald.persistent", True),
    ("amazon2023", "logging_time", "logrotate.installed", False),
    ("amazon2023", "password_policy", "hash.pam_unix_method", "yescrypt"),
    # --- BusyBox userland (recorded) and Alpine ---------------------------------------------------
    ("busybox", "listening", "tool", "netstat"),
    ("busybox", "listening", "processes_visible", True),
    ("busybox", "listening", "contains(tcp_ports, `2024`)", True),
    ("busybox", "interfaces", "interfaces[?name=='eth0'].addresses[0].address | [0]", "192.0.2.2"),
    ("busybox", "interfaces", "non_private_addresses", [{"address": "192.0.2.2", "interface": "eth0", "category": "documentation"}]),
    ("debian11", "interfaces", "non_private_addresses", []),
    ("debian11", "interfaces", "all_private", True),
    ("busybox", "interfaces", "default_routes[].gateway", ["192.0.2.1", "fd00::1"]),
    ("busybox", "accounts", "uid0_non_root", ["toor"]),
    ("busybox", "accounts", "empty_password", ["test"]),
    ("busybox", "accounts", "accounts[?name=='alice'].hash_algo | [0]", "sha512"),
    ("busybox", "accounts", "accounts[?name=='alice'].expires | [0]", "2024-10-04"),
    ("busybox", "accounts", "accounts[?name=='alice'].last_login | [0]", None),
    ("busybox", "accounts", "last_login_source", None),
    ("busybox", "accounts", "@status", PARTIAL),
    ("busybox", "password_policy", "hash.weak_hash_accounts", ["toor"]),
    ("busybox", "patch", "manager", None),
    ("busybox", "patch", "pending_total", None),
    ("busybox", "patch", "last_update_source", "apk db"),
    ("busybox", "remote_admin", "ssh.installed", False),
    ("busybox", "os", "id", "alpine"),
    ("alpine", "patch", "manager", "apk"),
    ("alpine", "patch", "pending_total", 4),
    ("alpine", "patch", "pending_security", None),
    ("alpine", "patch", "pending[?name=='libssl3'].to_version | [0]", "3.1.7-r0"),
    ("alpine", "patch", "components.openssl", "3.1.4-r5"),
    ("alpine", "os", "eol", True),
    ("alpine", "os", "security_source", None),  # apk repositories are not modelled: unknown, not "none"
    ("alpine", "remote_admin", "ssh.use_pam", False),
    ("alpine", "logging_time", "syslog.daemon", "syslogd"),
    ("alpine", "logging_time", "journald.installed", False),
    ("alpine", "logging_time", "journald.persistent", None),
    # --- recorded Debian 12 (this dev VM), as root and as nobody ---------------------------------
    ("debian12", "os", "id", "debian"),
    ("debian12", "patch", "pending_total", 120),  # apt-cache policy form, same set as `apt list --upgradable`
    ("debian12", "patch", "pending_security", 74),
    ("debian12", "patch", "pending[?name=='openssl'].origin | [0]", "bookworm-security/main"),
    ("debian12", "os", "family", "debian"),
    ("debian12", "os", "eol_date", "2026-06-10"),
    # lifecycle and update sources (update_sources.txt recorded on the same VM, 2026-12-05)
    ("debian12", "os", "support_phase", "extended"),  # clock 2026-11-23: past regular support, in Debian LTS
    ("debian12", "os", "extended_support_name", "Debian LTS"),
    ("debian12", "os", "extended_needs_enrolment", False),
    ("debian12", "os", "security_source", True),
    ("debian12", "os", "security_sources", ["bookworm-security (http://deb.debian.org/debian-security)"]),
    ("debian12", "os", "extended_enrolled", True),  # LTS ships through the security suite
    ("debian12", "os", "update_sources[?security].file", ["/etc/apt/sources.list.d/debian.sources"]),
    ("debian12", "os", "length(update_sources)", 3),  # deb822: one entry per suite
    ("debian12", "os", "own_kernel", None),  # os_boot recorded before the container check existed
    ("debian12", "patch", "security_index", True),
    ("debian12_nonroot", "os", "security_source", True),  # sources are world-readable
    ("debian12_lts", "os", "support_phase", "extended"),
    ("debian12_lts", "os", "extended_enrolled", True),
    ("debian12_lts", "os", "container", "docker"),
    ("debian12_lts", "os", "own_kernel", False),
    ("debian12_lts", "os", "container_evidence", ["/.dockerenv exists"]),
    ("debian12_lts", "patch", "pending_security", 93),
    ("debian12_lts", "patch", "days_since_update", 0),  # an install today, with 93 security updates waiting
    ("debian12_lts", "patch", "reboot_required", None),  # a container: no flag mechanism, no /boot kernels
    ("debian12", "accounts", "shadow_readable", True),
    ("debian12", "accounts", "accounts[?name=='root'].password_state | [0]", "locked"),
    ("debian12_nonroot", "accounts", "@status", PARTIAL),
    ("debian12_nonroot", "accounts", "shadow_readable", False),
    ("debian12_nonroot", "accounts", "accounts[?name=='root'].password_state | [0]", "needs_privilege"),
    ("debian12_nonroot", "accounts", "accounts[?name=='root'].password_never_expires | [0]", None),
    ("debian12_nonroot", "accounts", "sudoers", None),
    ("debian12_nonroot", "password_policy", "hash.algorithms", None),
    ("debian12_nonroot", "firewall", "active", None),
    ("debian12_nonroot", "firewall", "nftables.readable", False),
    ("debian12_nonroot", "firewall", "rule_count", None),
    ("debian12_nonroot", "listening", "processes_visible", False),
    ("debian12_nonroot", "listening", "@status", PARTIAL),
    ("debian12_nonroot", "remote_admin", "ssh.source", "config"),
    ("debian12_nonroot", "remote_admin", "ssh.permit_root_login", None),
    ("debian12_nonroot", "remote_admin", "@status", PARTIAL),
    # --- tools missing, sections missing ---------------------------------------------------------
    ("missing", "listening", "tool", "proc"),
    ("missing", "listening", "processes_visible", False),
    ("missing", "listening", "contains(tcp_ports, `2024`)", True),
    ("missing", "listening", "@status", PARTIAL),
    ("missing", "interfaces", "tool", "ifconfig"),
    (
        "missing",
        "interfaces",
        "interfaces[?name=='eth0'] | [0].addresses[].address",
        ["192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"],
    ),
    ("missing", "interfaces", "interfaces[?name=='ifb0'].up | [0]", False),
    (
        "missing",
        "interfaces",
        "default_routes",
        [{"family": "ipv4", "gateway": "192.0.2.1", "interface": "eth0"}],
    ),
    ("missing", "patch", "pending_total", None),
    ("missing", "patch", "@status", PARTIAL),
    ("missing", "firewall", "active", False),
    ("missing", "firewall", "@status", PARTIAL),
    ("missing", "accounts", "sudoers", None),
    ("missing", "accounts", "accounts[?name=='root'].last_login_days | [0]", None),
    ("missing", "logging_time", "@status", PARTIAL),
    ("missing", "logging_time", "time.synchronized", None),
    # --- ko_KR locale leaking into the output: never guessed -------------------------------------
    ("ko_kr", "accounts", "@status", PARTIAL),
    ("ko_kr", "accounts", "accounts[?name=='ubuntu'].last_login | [0]", None),
    ("ko_kr", "accounts", "accounts[?name=='ubuntu'].never_logged_in | [0]", None),
    ("ko_kr", "accounts", "accounts[?name=='kim'].gecos | [0]", "김민수,,,"),
    ("ko_kr", "logging_time", "time.synchronized", None),
    ("ko_kr", "logging_time", "@status", PARTIAL),
    ("ko_kr", "patch", "pending_total", 2),
    ("ko_kr", "patch", "pending_security", 2),
    # --- truncated / timed-out sections ----------------------------------------------------------
    ("truncated", "patch", "@status", PARTIAL),
    ("truncated", "patch", "pending_total", None),
    ("truncated", "patch", "pending_security", None),
    ("truncated", "patch", "last_update", "2026-11-09T21:31:05Z"),
    ("truncated", "listening", "@status", NOT_COLLECTED),
    ("truncated", "accounts", "accounts[?name=='ubuntu'].password_state | [0]", "unknown"),
    ("truncated", "accounts", "empty_password", []),
    ("truncated", "accounts", "accounts[?name=='ubuntu'].last_login | [0]", None),
    ("truncated", "password_policy", "hash.algorithms", None),
    ("truncated", "logging_time", "time.synchronized", None),
]


@pytest.fixture(scope="module")
def facts() -> dict:
    cache: dict = {}

    def get(distro: str, probe: str):
        key = (distro, probe)
        if key not in cache:
            cache[key] = by_name(probe).parse(load(distro))
        return cache[key]

    return get  # type: ignore[return-value]


#: every built-in rule's parameter defaults (names are unique, or equal where two rules share one)
RULE_PARAMS = {k: v for r in load_profile("fsi-openapi-2018").rules for k, v in r.params.items()}


@pytest.mark.parametrize(
    "distro,probe,expr,expected", EXPECTED, ids=[f"{d}-{p}-{e}" for d, p, e, _ in EXPECTED]
)
def test_expected(facts, distro, probe, expr, expected):
    fact = facts(distro, probe)
    if expr == "@status":
        assert fact.status.value == expected, fact.reason
        return
    # what is weak or insecure is the rules' params (ssh-algorithms, no-insecure-services), applied here to each
    # distribution's real output
    got = evaluate(bind_params(expr, RULE_PARAMS), fact.data) if "params." in expr else jmespath.search(expr, fact.data)
    assert got == expected, f"{distro} {probe} {expr}: {got!r} (status {fact.status.value}: {fact.reason})"


def test_every_fixture_distro_is_exercised():
    used = {d for d, _, _, _ in EXPECTED}
    assert set(distros()) <= used, set(distros()) - used


@pytest.mark.parametrize("distro", distros())
def test_all_probes_parse_every_fixture(distro):
    """No probe raises on any fixture; facts are JSON; status and reason agree."""
    outputs = load(distro)
    for p in PROBES:
        fact = p.parse(outputs)
        assert fact.probe == p.name
        json.dumps(fact.to_json())
        if fact.status == FactStatus.COLLECTED:
            assert fact.reason is None, (p.name, fact.reason)
        else:
            assert fact.reason, (p.name, fact.status)


MY_PROBES = [
    "os",
    "patch",
    "antivirus",
    "listening",
    "interfaces",
    "firewall",
    "remote_admin",
    "accounts",
    "password_policy",
    "logging_time",
]
#: (probe, command) whose loss cannot show on that host: the command is not consulted there.
UNUSED = {
    ("ubuntu2204", "patch", "pkg_security"),  # apt: security origin is in the simulation
    ("ubuntu2204", "remote_admin", "sshd_config"),  # sshd -T answered
    ("rhel9", "remote_admin", "sshd_config"),
}


@pytest.mark.parametrize("distro", ["ubuntu2204", "rhel9"])
@pytest.mark.parametrize("how", ["truncated", "timed_out", "missing"])
def test_damaged_section_is_never_collected(distro, how):
    """Any one damaged section of a probe makes it PARTIAL/NOT_COLLECTED with a reason, never 'fine'."""
    import dataclasses

    for name in MY_PROBES:
        probe = by_name(name)
        for cmd in probe.commands:
            if (distro, name, cmd.name) in UNUSED:
                continue
            outputs = load(distro)
            assert cmd.name in outputs, (distro, cmd.name)
            if how == "missing":
                del outputs[cmd.name]
            elif how == "truncated":
                outputs[cmd.name] = dataclasses.replace(
                    outputs[cmd.name], truncated=True, output=outputs[cmd.name].output[:40]
                )
            else:
                outputs[cmd.name] = dataclasses.replace(
                    outputs[cmd.name], timed_out=True, exit_code=None, output=""
                )
            fact = probe.parse(outputs)
            assert fact.status != FactStatus.COLLECTED, (distro, name, cmd.name, how)
            assert fact.reason
