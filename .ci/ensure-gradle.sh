#!/usr/bin/env bash
# Makes sure what builds the JVM UDF jar is installed: a JDK (javac), Debian's gradle (4.4.1) and
# junit4. Installs what is missing with apt, and says plainly what is missing when that is not
# possible. Debian's gradle and junit4 depend only on a JRE, so javac is checked on its own.
set -euo pipefail
missing=()   # Debian packages to install
what=()      # what each one provides, for the messages
if ! command -v javac >/dev/null 2>&1; then
    missing+=(openjdk-17-jdk-headless); what+=("javac (a JDK, not only a JRE)")
fi
if ! command -v gradle >/dev/null 2>&1; then
    missing+=(gradle); what+=(gradle)
fi
if [ ! -f /usr/share/java/junit4.jar ]; then
    missing+=(junit4); what+=("JUnit 4 (/usr/share/java/junit4.jar)")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
needed=$(printf '%s, ' "${what[@]}"); needed=${needed%, }
echo "sparkdedup: building the JVM UDF jar needs ${needed}; installing ${missing[*]} with apt" >&2
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "sparkdedup: cannot install them: not root and no sudo. Missing: ${needed}." \
         "Run 'apt-get install ${missing[*]}' as root." >&2
    exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    echo "sparkdedup: 'apt-get install ${missing[*]}' failed. Missing: ${needed}." \
         "Install them by hand (Debian packages ${missing[*]})." >&2
    exit 1
fi
if ! command -v javac >/dev/null 2>&1; then
    echo "sparkdedup: javac is still not on PATH after installing ${missing[*]}; put the JDK's" \
         "bin directory on PATH (e.g. /usr/lib/jvm/java-17-openjdk-amd64/bin)" >&2
    exit 1
fi
