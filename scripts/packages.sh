# shellcheck shell=bash
# Source this file for `apt_install PACKAGE...` (Debian's packages, with sudo unless root)
# and the packages the service itself needs beside Python's.

# WeasyPrint lays out the invoice and credit-note PDFs with Pango and a font.
DOCUMENT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)

apt_install() {
    [ "$#" -gt 0 ] || return 0
    local as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q "$@"
}

# The names of those of the packages that are not installed.
not_installed() {
    local package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || echo "$package"
    done
}
