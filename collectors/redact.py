"""The one redaction pass every byte of a bundle goes through: passwords, hashes, private keys, tokens.

Probes avoid reading secrets (the accounts probe strips hashes on the target), but
target output is untrusted and configuration files hold credentials in countless
spellings. So :func:`redact` (text) and :func:`redact_obj` (facts, results: every
string in a JSON document, keys included) are applied by the bundle writer to
everything it writes, by the logger to every line, and :func:`scan_text` is run
over the finished bundle before it is signed (``collectors.bundle.seal``).

Detectors, in two families:

* detect-secrets (Yelp, pinned in requirements.txt; runs offline, no plugin's
  network ``verify`` is ever called): its keyword detector (in its config-file
  mode, which also reads unquoted values) and the token formats of its regex plugins (AWS, GitHub, GitLab, Slack, Stripe, JWT,
  SendGrid, npm, PyPI, OpenAI, Azure, basic-auth URLs …);
* formats it does not know: crypt(3) hashes (``$1$ $2b$ $5$ $6$ $y$ $apr1$
  $argon2id$ $pbkdf2-…$ $scrypt$``…), LDAP ``{SSHA}``/``{CRYPT}``… hashes, MySQL
  ``*<40 hex>``, PEM and PuTTY private keys, a base64 private key without its
  armour (recognised by its DER or openssh-key-v1 structure), a bare base64 line
  of a key body outside any public armour, ``mysql -pSECRET``, ``--password
  SECRET``, ``bindpw SECRET``-style directives and ``*_PASS=SECRET`` assignments.

Digests, fingerprints, certificates, public keys and SSH signatures are evidence,
not secrets: hex strings and base64 inside ``CERTIFICATE``/``PUBLIC KEY``/``SSH
SIGNATURE`` armour are kept (detect-secrets' high-entropy plugins are not used
for that reason: they flag every sha256).

Why the keyword pre-filter: the pass is on the hot path of fleet runs (~100 KB of
evidence per host). Running every detector over every line cost ~50 µs a line;
instead the lower-cased text is searched once per trigger word with ``str.find``
(C speed) and detectors run only on the lines that hold a trigger.
``benchmarks/reliability_bundles.py`` prints the cost per host.
"""
from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import threading
from collections import Counter
from typing import Any, Callable, Iterable, Optional, cast

MARK = "<redacted>"


class Tally:
    """Redactions counted by kind (thread-safe); recorded in results.json as ``redactions``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kinds: Iterable[str]) -> None:
        with self._lock:
            self.counts.update(kinds)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.counts.values()), "by_kind": dict(sorted(self.counts.items()))}


# -- detect-secrets -------------------------------------------------------------------------------

def _load_detect_secrets() -> tuple[Any, list[tuple[str, tuple[str, ...], list[re.Pattern[str]], bool]]]:
    """The keyword detector and the regex plugins with the lower-case words that must occur in a line for them
    to be run there. Imported lazily (detect-secrets' import costs ~0.1 s)."""
    from detect_secrets.plugins import aws, azure_storage_key, basic_auth, discord, github_token, gitlab_token
    from detect_secrets.plugins import jwt, mailchimp, npm, openai, pypi_token, sendgrid, slack
    from detect_secrets.plugins import square_oauth, stripe, telegram_token, twilio
    from detect_secrets.plugins.keyword import KeywordDetector

    # (name, trigger words, plugin, redact group 1 only). Few, short trigger words: each costs one str.find
    # over the whole text; words shared with the keyword triggers below add no search at all.
    plugins = [
        ("aws", ("akia", "asia", "aws"), aws.AWSKeyDetector, False),
        ("azure", ("key",), azure_storage_key.AzureStorageKeyDetector, False),
        ("basic_auth", ("://",), basic_auth.BasicAuthDetector, True),
        ("discord", ("token", "bot"), discord.DiscordBotTokenDetector, False),
        ("github", ("gh",), github_token.GitHubTokenDetector, False),
        ("gitlab", ("gl", "gr1348941"), gitlab_token.GitLabTokenDetector, False),
        ("jwt", ("eyj",), jwt.JwtTokenDetector, False),
        ("mailchimp", ("-us",), mailchimp.MailchimpDetector, False),
        ("npm", ("token",), npm.NpmDetector, True),
        ("openai", ("t3blbkfj",), openai.OpenAIDetector, False),
        ("pypi", ("pypi-",), pypi_token.PypiTokenDetector, False),
        ("sendgrid", ("sg.",), sendgrid.SendGridDetector, False),
        ("slack", ("xox", "://"), slack.SlackDetector, False),
        ("square", ("sq0csp-",), square_oauth.SquareOAuthDetector, False),
        ("stripe", ("_live_",), stripe.StripeDetector, False),
        ("telegram", ("token", "bot"), telegram_token.TelegramBotTokenDetector, False),
        ("twilio", ("twilio",), twilio.TwilioKeyDetector, False),
    ]
    # ``denylist`` is a class attribute of these detectors (declared as an abstract property on their base)
    out = [(name, trig, list(cast(Iterable["re.Pattern[str]"], cls.denylist)), grp) for name, trig, cls, grp in plugins]
    return KeywordDetector(), out


_DS: Optional[tuple[Any, list[tuple[str, tuple[str, ...], list[re.Pattern[str]], bool]]]] = None
_DS_LOCK = threading.Lock()


def _ds() -> tuple[Any, list[tuple[str, tuple[str, ...], list[re.Pattern[str]], bool]]]:
    global _DS
    if _DS is None:
        with _DS_LOCK:
            if _DS is None:
                _DS = _load_detect_secrets()
    return _DS


#: the keyword detector's own words (its DENYLIST stems) plus ours
_KEYWORD_TRIGGERS = ("pass", "pw", "secret", "token", "key", "auth", "cred", "contras", "mysql", "mariadb", "curl")


@functools.lru_cache(maxsize=1)
def _triggers() -> tuple[tuple[str, frozenset[str]], ...]:
    """Each trigger word once, with every detector it wakes (one find per word, whoever needs it)."""
    by_word: dict[str, set[str]] = {t: {"keyword"} for t in _KEYWORD_TRIGGERS}
    for name, words, _, _ in _ds()[1]:
        for w in words:
            by_word.setdefault(w, set()).add(name)
    return tuple((w, frozenset(n)) for w, n in by_word.items())

# -- our own detectors ----------------------------------------------------------------------------

_CRYPT_IDS = r"1|2[abxy]|5|6|7|y|gy|sha1|sha256|sha512|md5|apr1|scrypt|bcrypt(?:-sha256)?|argon2(?:id|i|d)|" \
             r"pbkdf2(?:-sha1|-sha256|-sha512)?|sm3|nt|3|P|H"
_CRYPT_ID = re.compile(_CRYPT_IDS)
#: one cheap pattern, the identifier checked afterwards (an alternation after every '$' of a shell script is slow)
_CRYPT = re.compile(r"\$([0-9A-Za-z-]{1,16})\$[./A-Za-z0-9$=,+\-]{8,}")
_DJANGO = re.compile(r"(?:pbkdf2_sha(?:1|256)|bcrypt_sha256|argon2|scrypt)\$[^\s:'\"]{8,}")
_LDAP = re.compile(r"\{(?i:s?sha(?:1|224|256|384|512)?|s?md5|crypt|pbkdf2[\w-]*|argon2\w*|bcrypt|cleartext|plain|"
                   r"ns-mta-md5|ssha-?\d*)\}[^\s'\"]{4,}")
_MYSQL_HASH = re.compile(r"\*(?<![0-9A-Za-z]\*)[0-9A-Fa-f]{40}(?![0-9A-Za-z])")
_PEM_PRIVATE = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----(.*?)(?:-----END \1PRIVATE KEY(?: BLOCK)?-----|\Z)",
                          re.S)
_PUTTY = re.compile(r"(?s)Private-Lines:\s*\d+[ \t]*\n(.*?)\n?(?=Private-MAC:|\Z)")
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
_ARMOUR = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]+)-----")

_NAME = r"(?:pass(?:word|wd|phrase)?|pwd|pw|secret|token|(?:api|auth|access|private)[_-]?key|credentials?)"
#: ``*password*=value``, ``client_secret: value``, ``X_DB_PASS=value``: the name stays, the value goes
_ASSIGN = re.compile(r"(?i)[\w.-]*" + _NAME + r"\w*[\"']?\s*[=:]\s*(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;]+)")
#: ``--password SECRET``, ``--db-pass=SECRET``, ``-p SECRET`` of sshpass
_OPTION = re.compile(r"(?i)(?<![\w-])--?[\w-]*" + _NAME + r"[\w-]*(?:\s+|=)(?!-)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)")
#: ``bindpw SECRET``, ``requirepass SECRET``, ``rootpw {SSHA}…``: a directive line of name and value
_DIRECTIVE = re.compile(r"(?im)^[ \t]*[\w.-]*(?:" + _NAME + r"|masterauth)[ \t]+(?!(?:requisite|required|sufficient|optional|"
                        r"include|substack|yes|no|none)\b|\[)(\S+)[ \t]*(?:#.*)?$")
#: ``mysql -pSECRET`` (``-p`` alone prompts, and the next word is a database), ``sshpass -p SECRET``
_MYSQL_P = re.compile(r"(?i)\b(?:mysql\w*|mariadb\w*)\b[^\n|;&]*?\s-p(?![\s-])(\S+)")
_SSHPASS_P = re.compile(r"(?i)\bsshpass\b[^\n|;&]*?\s-p[ \t]*(?!-)(\S+)")
#: ``curl -u user:SECRET``, ``wget --password=…`` is an option above
_CURL_U = re.compile(r"(?i)\bcurl\b[^\n|;&]*?\s(?:-u|--user)[ \t]*[\"']?[^\s:\"']+:([^\s\"']+)")
_AUTH_HEADER = re.compile(r"(?i)(?:authorization|proxy-authorization)[ \t]*[:=][ \t]*\"?(?:bearer|basic|token|digest)[ \t]+([^\s\"]+)")
#: values that are configuration words, not secrets (``PasswordAuthentication: yes``, ``PASS_MAX_DAYS=90``)
_PLAIN_VALUES = {"yes", "no", "true", "false", "on", "off", "none", "null", "required", "optional", "sufficient",
                 "requisite", "include", "substack", "prompt", "disabled", "enabled", "any", "all", "*", "ok",
                 "unknown", "unset", "empty", "(empty)", "missing", "locked", "expired", "never", MARK}


#: names that look like credentials and are not: the passwd database (``passwd: files systemd`` in
#: nsswitch.conf, ``passwd: ok`` of our own probe)
_NOT_NAMES = {"passwd": True, "passwd-": True}
_PASSWD_DB = re.compile(r"[ \t]*passwd[ \t]*:[ \t]*(?:files|compat|systemd|sss|ldap|nis|db|ok|awk)\b")


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _is_private_der(token: str) -> bool:
    """Does this base64 decode to a private key (openssh-key-v1, or DER: SEQUENCE { INTEGER 0|1, … }, or an
    encrypted PKCS#8 with PBES2/PBES1)? Certificates and public keys start SEQUENCE { SEQUENCE …}."""
    head = token[:64]
    head = head[: len(head) - len(head) % 4]
    try:
        raw = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return False
    if raw.startswith(b"openssh-key-v1\0") or raw.startswith(b"SSH PRIVATE KEY FILE FORMAT"):
        return True
    if len(raw) < 8 or raw[0] != 0x30:
        return False
    i = 2 if raw[1] < 0x80 else 2 + (raw[1] & 0x7F)
    if raw[i:i + 3] in (b"\x02\x01\x00", b"\x02\x01\x01"):
        return True  # PKCS#1 RSA / DSA / PKCS#8 (version 0) / SEC1 EC (version 1)
    return b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05" in raw[i:i + 20]  # pkcs5 PBES: encrypted PKCS#8


def _is_ssh_public(token: str) -> bool:
    """An SSH public key blob (``AAAAC3NzaC1lZDI1NTE5…``): length-prefixed key type in the wire format."""
    if not token.startswith("AAAA"):
        return False
    try:
        raw = base64.b64decode(token[:40], validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw[4:8] in (b"ssh-", b"ecds", b"sk-e", b"sk-s")


def _public_armour_spans(text: str) -> list[tuple[int, int]]:
    """Bodies of BEGIN/END blocks that are not private keys (certificates, public keys, SSH signatures)."""
    spans, start, kind = [], None, None
    for m in _ARMOUR.finditer(text):
        if m.group(1) == "BEGIN":
            start, kind = m.end(), m.group(2)
        elif start is not None and m.group(2) == kind:
            if "PRIVATE" not in kind:
                spans.append((start, m.start()))
            start = None
    return spans


Span = tuple[int, int, str]


def _value_ok(v: str) -> bool:
    """A value worth redacting (not empty, not a configuration word, not a shell variable, not already redacted)."""
    s = v.strip("\"'")
    if not s or s.lower() in _PLAIN_VALUES or MARK in s:
        return False
    if s.startswith("$") and re.fullmatch(r"\$\{?\w+\}?", s):
        return False  # a shell variable: the secret is elsewhere
    if s.startswith("/") and re.fullmatch(r"/[\w./-]*", s):
        return False  # a path (``passwd: /etc/passwd``, ``password_file: /run/secrets/db``), not the secret
    return True


def _find(text: str) -> list[Span]:
    """Every secret's (start, end, kind) in ``text``: the value only, so the name stays readable.

    Line by line, each distinct line scanned once and its result kept (:func:`_line_result`): most lines are the
    same on every host of a fleet (the probe scripts themselves, stock configuration), and the final scan before
    signing reads back what was just written. Only the patterns that span lines (armoured keys) look at the whole
    text."""
    spans: list[Span] = []
    if "PRIVATE KEY" in text:
        for m in _PEM_PRIVATE.finditer(text):
            spans.append((m.start(2), m.end(2), "private_key"))
    if "Private-Lines:" in text:
        for m in _PUTTY.finditer(text):
            spans.append((m.start(1), m.end(1), "private_key"))
    lines = text.split("\n")
    cache = _LINE_CACHE
    fresh = [ln for ln in dict.fromkeys(lines) if ln not in cache]
    fresh_result: dict[str, tuple[Span, ...]] = _scan_fresh(fresh) if fresh else {}
    public: Optional[list[tuple[int, int]]] = None
    pos = 0
    for line in lines:
        found = cache.get(line)
        if found is None:
            found = fresh_result.get(line)
        if found is None:  # the cache was emptied meanwhile by another thread
            found = _line_result(line)
        for a, b, k in found:
            if k == "key_material":  # random base64 inside a certificate, public key or signature is evidence
                if public is None:
                    public = _public_armour_spans(text) if "-----BEGIN" in text else []
                if any(x <= pos + a < y for x, y in public):
                    continue
            spans.append((pos + a, pos + b, k))
        pos += len(line) + 1
    return spans


def _scan_fresh(fresh: list[str]) -> dict[str, tuple[Span, ...]]:
    """Scan the lines never seen before as one block (one ``str.find`` per trigger word over the block, not one
    per line), and keep each line's result."""
    import bisect

    block = "\n".join(fresh)
    starts, pos = [], 0
    for ln in fresh:
        starts.append(pos)
        pos += len(ln) + 1
    per: list[list[Span]] = [[] for _ in fresh]
    marked: set[int] = set()
    for s0, e0, k in _find_block(block, marked):
        i = bisect.bisect_right(starts, s0) - 1
        per[i].append((s0 - starts[i], min(e0, starts[i] + len(fresh[i])) - starts[i], k))
    global _LINE_CACHE_CHARS
    cache = _LINE_CACHE
    size = sum(len(ln) for ln in fresh)
    if len(cache) + len(fresh) > _LINE_CACHE_MAX or _LINE_CACHE_CHARS + size > _LINE_CACHE_MAX_CHARS:
        cache.clear()  # bounded memory whatever the fleet size; the common lines come back with the next host
        _LINE_CACHE_CHARS = 0
    for ln, sp in zip(fresh, per):
        if len(ln) <= 16384:
            cache[ln] = tuple(sp)
    _LINE_CACHE_CHARS += size
    return {ln: tuple(sp) for ln, sp in zip(fresh, per)}


def _find_block(text: str, marked: Optional[set[int]] = None) -> list[Span]:
    """Line-local detectors over a block of lines: hashes and key material by regex over the whole block,
    keyword and token rules only on the lines where a trigger word occurs (found with ``str.find``)."""
    spans: list[Span] = []
    if "$" in text:
        spans += [(m.start(), m.end(), "password_hash") for m in _CRYPT.finditer(text)
                  if _CRYPT_ID.fullmatch(m.group(1))]
        spans += [(m.start(), m.end(), "password_hash") for m in _DJANGO.finditer(text)]
    if "{" in text:
        spans += [(m.start(), m.end(), "password_hash") for m in _LDAP.finditer(text)]
    if "*" in text:
        spans += [(m.start(), m.end(), "password_hash") for m in _MYSQL_HASH.finditer(text)]
    for m in _B64_RUN.finditer(text):
        tok = m.group(0)
        if _is_private_der(tok):
            spans.append((m.start(), m.end(), "private_key"))
        # A key body line is 64 (PEM) or 70 (OpenSSH) characters of random base64; it can appear bare, or quoted
        # in a tool's error message ("no argument after keyword \"MIIC…\"").
        elif not (len(tok) < 60 or re.fullmatch(r"[0-9a-fA-F]+", tok) or _entropy(tok) < 4.0 or _is_ssh_public(tok)):
            spans.append((m.start(), m.end(), "key_material"))
    low = text.lower()
    if len(low) != len(text):  # case folding changed lengths (rare scripts): line by line, offsets stay exact
        pos = 0
        for ln in text.split("\n"):
            spans += [(pos + a, pos + b, k) for a, b, k in _line_result(ln)
                      if k not in ("password_hash", "private_key", "key_material")]
            pos += len(ln) + 1
        return spans
    lines_hit: dict[tuple[int, int], set[str]] = {}
    for t, names in _triggers():
        i = low.find(t)
        while i >= 0:
            s = text.rfind("\n", 0, i) + 1
            e = text.find("\n", i)
            e = len(text) if e < 0 else e
            lines_hit.setdefault((s, e), set()).update(names)
            i = low.find(t, e)
    if marked is not None:
        marked.update(s for s, _ in lines_hit)
    for (s, e), which in lines_hit.items():
        spans += _line_spans(text, s, e, which)
        if "authorization" in low[s:e]:
            spans += [(s + m.start(1), s + m.end(1), "auth_header") for m in _AUTH_HEADER.finditer(text[s:e])]
    return spans


#: results per distinct line (bounded: cleared when full); lines are immutable, so sharing between threads is safe
_LINE_CACHE: dict[str, tuple[Span, ...]] = {}
_LINE_CACHE_MAX = 30_000
_LINE_CACHE_MAX_CHARS = 4_000_000  # with the entries' overhead, ~10 MB at most
_LINE_CACHE_CHARS = 0


def _line_result(line: str) -> tuple[Span, ...]:
    """The secrets in one line (offsets in the line): hashes, key material, then — only when a trigger word occurs
    in it — the keyword rules, detect-secrets' keyword detector and the token formats that word wakes."""
    spans: list[Span] = []
    if "$" in line:
        spans += [(m.start(), m.end(), "password_hash") for m in _CRYPT.finditer(line)
                  if _CRYPT_ID.fullmatch(m.group(1))]
        if "_" in line or "argon2$" in line or "scrypt$" in line:
            spans += [(m.start(), m.end(), "password_hash") for m in _DJANGO.finditer(line)]
    if "{" in line:
        spans += [(m.start(), m.end(), "password_hash") for m in _LDAP.finditer(line)]
    if "*" in line:
        spans += [(m.start(), m.end(), "password_hash") for m in _MYSQL_HASH.finditer(line)]
    if len(line) >= 40:
        for m in _B64_RUN.finditer(line):
            tok = m.group(0)
            if _is_private_der(tok):
                spans.append((m.start(), m.end(), "private_key"))
            # A key body line is 64 (PEM) or 70 (OpenSSH) characters of random base64; it can appear bare, or
            # quoted in a tool's error message ("no argument after keyword \"MIIC…\"").
            elif not (len(tok) < 60 or re.fullmatch(r"[0-9a-fA-F]+", tok) or _entropy(tok) < 4.0
                      or _is_ssh_public(tok)):
                spans.append((m.start(), m.end(), "key_material"))
    low = line.lower()
    which: set[str] = set()
    for t, names in _triggers():
        if t in low:
            which |= names
    if which:
        spans += _line_spans(line, 0, len(line), which)
    if "authorization" in low:
        spans += [(m.start(1), m.end(1), "auth_header") for m in _AUTH_HEADER.finditer(line)]
    return tuple(spans)


def _line_spans(text: str, s: int, e: int, which: set[str]) -> list[Span]:
    line = text[s:e]
    out: list[Span] = []
    if "keyword" in which and not _PASSWD_DB.match(line):
        for rx, kind in ((_ASSIGN, "password"), (_OPTION, "password"), (_DIRECTIVE, "password"),
                         (_MYSQL_P, "password"), (_SSHPASS_P, "password"), (_CURL_U, "password")):
            for m in rx.finditer(line):
                if not _value_ok(m.group(1)) or _NOT_NAMES.get(
                        re.sub(r"[\s\"':=]", "", line[m.start():m.start(1)]).lower()) is not None:
                    continue
                if rx is _ASSIGN and _prose_label(line, m):
                    continue  # "accounts with an empty password: guest": a sentence, not a setting
                out.append((s + m.start(1), s + m.end(1), kind))
        if not _PROSE_LABEL.search(line):
            out += _keyword_detector(line, s)
    return out + _token_spans(line, s, which)


def _keyword_detector(line: str, s: int) -> list[Span]:
    """detect-secrets' keyword detector, in its config-file mode (unquoted values too)."""
    out: list[Span] = []
    try:
        found = _ds()[0].analyze_line(filename="evidence.conf", line=line, line_number=0, context=None)
    except Exception:  # a plugin bug on odd input must not stop a run; our own rules still apply
        found = set()
    for ps in found:
        v = ps.secret_value or ""
        if not _value_ok(v):
            continue
        j = line.find(v)
        while j >= 0:
            out.append((s + j, s + j + len(v), "password"))
            j = line.find(v, j + len(v))
    return out


def _token_spans(line: str, s: int, which: set[str]) -> list[Span]:
    """detect-secrets' token formats (whole tokens; group 1 where the plugin marks the secret part)."""
    out: list[Span] = []
    for name, _, patterns, group in _ds()[1]:
        if name not in which:
            continue
        for rx in patterns:
            for m in rx.finditer(line):
                g = 1 if group and m.re.groups else 0
                if m.group(g) and _value_ok(m.group(g)):
                    end = m.end(g)
                    if g == 0:  # some patterns end lazily (a JWT's signature): take the whole token
                        while end < len(line) and (line[end].isalnum() or line[end] in "-_.+/="):
                            end += 1
                    out.append((s + m.start(g), s + end, name))
    return out


#: ``<word> password: value`` — a sentence ("accounts with an empty password: guest", chage's "Last password
#: change : …"), not a configuration key: a ``key: value`` setting starts its line or follows a quote or brace
_PROSE_LABEL = re.compile(r"(?i)[a-z][ \t]+[\w.-]*" + _NAME + r"\w*[ \t]*:")


def _prose_label(line: str, m: "re.Match[str]") -> bool:
    sep = line[m.start():m.start(1)]
    return ":" in sep and "=" not in sep and bool(re.search(r"[A-Za-z][ \t]+$", line[:m.start()]))


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e, k in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e, out[-1][2])
            continue
        out.append((s, e, k))
    return out


def _spans(text: str) -> list[Span]:
    """The secrets to remove: non-empty, and not our own mark (redacting twice changes nothing)."""
    return _merge([sp for sp in _find(text) if sp[1] > sp[0] and text[sp[0]:sp[1]].strip("\"'") != MARK])


def redact_counted(text: str) -> tuple[str, list[str]]:
    """``text`` with every secret replaced by ``<redacted>``, and the kinds of what was removed."""
    spans = _spans(text)
    if not spans:
        return text, []
    out, last = [], 0
    for s, e, _ in spans:
        out.append(text[last:s])
        out.append(MARK)
        last = e
    out.append(text[last:])
    return "".join(out), [k for _, _, k in spans]


def redact(text: str, tally: Optional[Tally] = None) -> str:
    red, kinds = redact_counted(text)
    if kinds and tally is not None:
        tally.add(kinds)
    return red


def scan_text(text: str) -> list[str]:
    """Kinds of the secrets still in ``text`` (the final check before signing: must be empty)."""
    return [k for _, _, k in _spans(text)]


_QUICK = ("pass", "pwd", "pw", "secret", "token", "key", "auth", "cred", "contras", "mysql", "mariadb", "private",
          "curl", "sshpass",
          "$", "{", "*", "://", "eyj", "xox", "ghp_", "akia", "sk_live", "-us", "sg.", "pypi-", "glpat-")


def _may_hold(s: str) -> bool:
    """Cheap pre-check for a JSON subtree serialised compactly: can any detector fire inside it?"""
    low = s.lower()
    return any(t in low for t in _QUICK) or bool(_B64_RUN.search(s))


#: JSON keys whose values are public key material, not secrets (sslyze's ephemeral keys, certificate
#: fingerprints and signatures, SPKI pins): random-looking base64 there is evidence
_PUBLIC_KEYS = re.compile(r"(?i)public|fingerprint|digest|sha1|sha256|spki|serial|signature|pin_|as_pem|nonce")


#: a key naming a credential (``password``, ``db_pass``, ``client_secret``, ``api_key``): its string value is one
_SECRET_KEY = re.compile(r"(?i)(?:" + _NAME + r"|masterauth)$")


@functools.lru_cache(maxsize=4096)
def _key_kind(k: str) -> int:
    """1: the key names public material, 2: it names a credential, 0: neither (cached: keys repeat in every host's
    facts, and a regex per key was a third of the final scan)."""
    if _PUBLIC_KEYS.search(k):
        return 1
    if _SECRET_KEY.search(k) and k.lower() not in _NOT_NAMES:
        return 2
    return 0


def _strings(obj: Any, out: list[str], public: Optional[set[int]] = None, _pub: bool = False,
             secret: Optional[set[int]] = None) -> None:
    """Every string of a JSON-like value, keys included, in a fixed walk order; ``public`` collects the indexes
    of values found under a public-material key (see _PUBLIC_KEYS), ``secret`` those that are the value of a
    credential-named key (``{"password": "…"}``: key and value are two strings, no detector sees them together)."""
    t = type(obj)
    if t is str:
        if _pub and public is not None:
            public.add(len(out))
        out.append(obj)
    elif t is dict:
        for k, v in obj.items():
            kind = 0
            if type(k) is str:
                out.append(k)
                kind = _key_kind(k)
                if kind == 2 and secret is not None and type(v) is str and _value_ok(v):
                    secret.add(len(out))
            tv = type(v)
            if tv is str:  # the nearest key decides (as the streaming scan of a large document reads it)
                if kind == 1 and public is not None:
                    public.add(len(out))
                out.append(v)
            elif tv is dict or tv is list or tv is tuple or isinstance(v, (str, dict, list, tuple)):
                _strings(v, out, public, kind == 1, secret)
    elif t is list or t is tuple:
        for v in obj:
            tv = type(v)
            if tv is str:
                if _pub and public is not None:
                    public.add(len(out))
                out.append(v)
            elif tv is dict or tv is list or tv is tuple or isinstance(v, (str, dict, list, tuple)):
                _strings(v, out, public, _pub, secret)
    elif isinstance(obj, str):  # str subclasses
        _strings(str(obj), out, public, _pub, secret)
    elif isinstance(obj, dict):
        _strings(dict(obj), out, public, _pub, secret)
    elif isinstance(obj, (list, tuple)):
        _strings(list(obj), out, public, _pub, secret)


def _joined_spans(strings: list[str], public: Optional[set[int]] = None) -> dict[int, list[Span]]:
    """Run the detectors once over all strings joined by newlines (the cost of one text, not of one call per
    string); returns, per string index, the spans relative to that string. Strings in ``public`` lose only the
    generic key-material finding (a public key is random base64 too); every other detector still applies."""
    import bisect

    out: dict[int, list[Span]] = {}
    first = 0
    while first < len(strings):
        # batches of about 1 MiB: a fleet's results.json is never joined into one more string of its size
        last, size = first, 0
        while last < len(strings) and (size < _BATCH or last == first):
            size += len(strings[last]) + 1
            last += 1
        batch = strings[first:last]
        spans = _spans("\n".join(batch))
        if spans:
            starts, pos = [], 0
            for st in batch:
                starts.append(pos)
                pos += len(st) + 1
            for s0, e0, k in spans:
                j = bisect.bisect_right(starts, s0) - 1
                while j < len(batch) and starts[j] < e0:  # a span may cross strings (an armoured key split in two)
                    a, b = max(s0, starts[j]) - starts[j], min(e0, starts[j] + len(batch[j])) - starts[j]
                    if b > a and not (k == "key_material" and public and first + j in public):
                        out.setdefault(first + j, []).append((a, b, k))
                    j += 1
        first = last
    return out


_BATCH = 1 << 20


def _apply(st: str, spans: list[Span]) -> str:
    parts, last = [], 0
    for a, b, _ in sorted(spans):
        if a < last:
            a = last
        if b <= a:
            continue
        parts.append(st[last:a])
        parts.append(MARK)
        last = b
    parts.append(st[last:])
    return "".join(parts)


def redact_obj(obj: Any, tally: Optional[Tally] = None) -> Any:
    """Every string of a JSON-like value (keys too) redacted. All strings are scanned as one text (each on its
    own line), and only a value that held a secret is rebuilt; a clean value is returned as it is."""
    if isinstance(obj, str):
        return redact(obj, tally)
    if not isinstance(obj, (dict, list, tuple)):
        return obj
    strings: list[str] = []
    public: set[int] = set()
    secret: set[int] = set()
    _strings(obj, strings, public, secret=secret)
    hits = _joined_spans(strings, public)
    for i in secret:
        hits[i] = [(0, len(strings[i]), "password")]
    if not hits:
        return obj
    if tally is not None:
        tally.add(k for sp in hits.values() for _, _, k in sp)
    counter = iter(range(len(strings)))

    def rebuild(o: Any) -> Any:
        """A copy only along the paths that hold a secret; every untouched subtree is the original object (a
        fleet's results are not duplicated in memory for one redacted string)."""
        if isinstance(o, str):
            i = next(counter)
            return _apply(o, hits[i]) if i in hits else o
        if isinstance(o, dict):
            items, changed = [], False
            for k, v in o.items():
                nk = k
                if isinstance(k, str):
                    i = next(counter)
                    nk = _apply(k, hits[i]) if i in hits else k
                nv = rebuild(v)
                changed = changed or nk is not k or nv is not v
                items.append((nk, nv))
            return dict(items) if changed else o
        if isinstance(o, (list, tuple)):
            vals = [rebuild(v) for v in o]
            return vals if any(a is not b for a, b in zip(vals, o)) else o
        return o
    return rebuild(obj)


def redact_bytes(data: bytes, is_json: bool = False, tally: Optional[Tally] = None,
                 dump: Optional[Callable[[Any], str]] = None) -> bytes:
    """A file's bytes: JSON documents string by string (so they stay valid JSON), other UTF-8 text as text,
    anything else (an attached PDF) unchanged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if is_json:
        import json

        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if doc is not None:
            t = Tally()
            red = redact_obj(doc, t)
            if not t.counts:
                return data
            if tally is not None:
                tally.add(t.counts.elements())
            return ((dump or (lambda o: json.dumps(o, ensure_ascii=False, indent=1)))(red) + "\n").encode("utf-8")
    red = redact(text, tally)
    return data if red == text else red.encode("utf-8")


def scan_bytes(data: bytes, is_json: bool = False) -> list[str]:
    """Kinds of secrets found in a file's bytes (same reading as :func:`redact_bytes`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if is_json and len(text) > _BATCH:
        return _scan_json_stream(text)
    if is_json:
        import json

        try:
            doc = json.loads(text)
        except ValueError:
            return scan_text(text)
        if not _may_hold(text):
            return []
        strings: list[str] = []
        public: set[int] = set()
        secret: set[int] = set()
        _strings(doc, strings, public, secret=secret)
        # one pass over every string, each on its own line: the cost of one text, not of one call per string
        return [k for sp in _joined_spans(strings, public).values() for _, _, k in sp] + ["password"] * len(secret)
    return scan_text(text)


_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"(\s*:)?')


def scan_json_file(path: str) -> list[str]:
    """:func:`scan_bytes` of a large JSON file, read line by line (a JSON string never spans lines): neither the
    file's text nor its document is ever whole in memory."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return _scan_json_stream(f)


def _scan_json_stream(text: "str | Iterable[str]") -> list[str]:
    """The final scan of a large JSON document (a fleet's results.json) without building it in memory: its string
    literals are taken from the text in order, decoded, and scanned in batches as :func:`scan_bytes` does (a key
    marks its value as public material or as a credential)."""
    import json

    found: list[str] = []
    batch: list[str] = []
    public: set[int] = set()
    size = 0
    pending = 0  # kind of the nearest key before this string
    key_end = -1

    def flush() -> None:
        nonlocal batch, public, size
        if batch:
            found.extend(k for sp in _joined_spans(batch, public).values() for _, _, k in sp)
        batch, public, size = [], set(), 0

    for line in ([text] if isinstance(text, str) else text):
        key_end = -1
        for m in _JSON_STRING.finditer(line):
            raw = m.group(1)
            try:
                st = json.loads(f'"{raw}"') if "\\" in raw else raw
            except ValueError:
                st = raw
            if m.group(2):  # a key
                pending, key_end = _key_kind(st), m.end()
            elif pending == 1:
                public.add(len(batch))
            elif pending == 2 and key_end >= 0 and not line[key_end:m.start()].strip() and _value_ok(st):
                found.append("password")  # the string value right after a credential-named key
            batch.append(st)
            size += len(st) + 1
            if size >= _BATCH:
                flush()
    flush()
    return found
