#!/bin/sh
# Installs the Debian packages evidence-agent needs, only when missing, only as root.
# Usage: scripts/system-deps.sh run|test|bench|pdf   (pdf: what `report --format pdf` needs)
# Each entry is "command:package"; a command already on PATH means nothing to install.
set -eu
case "${1:-run}" in
  run)  want="nmap:nmap ssh-keygen:openssh-client" ;;
  test) want="nmap:nmap ssh-keygen:openssh-client sshd:openssh-server openssl:openssl nginx:nginx-light unshare:util-linux ip:iproute2 chromium:chromium pdftoppm:poppler-utils fc-list:fontconfig sudo:sudo iptables-restore:iptables nsenter:util-linux flock:util-linux systemd-analyze:systemd busybox:busybox nft:nftables redis-server:redis-server" ;;
  pdf)  want="chromium:chromium fc-list:fontconfig" ;;
  bench) want="nmap:nmap ssh-keygen:openssh-client sshd:openssh-server openssl:openssl nginx:nginx-light unshare:util-linux ip:iproute2 testssl:testssl.sh redis-server:redis-server" ;;
  *) echo "usage: $0 run|test|bench|pdf" >&2; exit 2 ;;
esac
missing=""
for pair in $want; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then missing="$missing $pkg"; fi
done
# CJK font so Korean renders in the HTML report screenshots (test only)
if { [ "${1:-run}" = test ] || [ "${1:-run}" = pdf ]; } && ! ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1; then missing="$missing fonts-noto-cjk"; fi
# python3 -m venv needs python3-venv on Debian
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then missing="$missing python3-venv"; fi
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "evidence-agent: missing Debian packages:$missing" >&2
  echo "  install them as root:  apt-get install -y$missing" >&2
  exit 1
fi
echo "evidence-agent: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
