#!/usr/bin/env bash
# Makes sure Debian's gradle (4.4.1) and junit4 are installed; installs them with apt when
# missing, and says plainly what is missing when that is not possible.
set -euo pipefail
missing=()
command -v gradle >/dev/null 2>&1 || missing+=(gradle)
[ -f /usr/share/java/junit4.jar ] || missing+=(junit4)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "sparkdedup: installing ${missing[*]} with apt (needed to build the JVM UDF jar)" >&2
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "sparkdedup: cannot install ${missing[*]}: not root and no sudo; run 'apt-get install ${missing[*]}'" >&2
    exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    echo "sparkdedup: 'apt-get install ${missing[*]}' failed; install them by hand (Debian packages gradle and junit4)" >&2
    exit 1
fi
