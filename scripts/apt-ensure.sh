# Sourced by the setup scripts: apt_ensure PREFIX PACKAGE... installs whichever of the Debian
# packages are missing (apt-get update first, as a fresh machine needs), quietly.
apt_ensure() {
  local prefix=$1 p
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$prefix: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
