#!/usr/bin/env bash
# Install retrotread on Raspberry Pi OS Bookworm or Trixie, upgrade it, or remove it.
#
#   sudo systemd/install.sh                        install or upgrade (safe to run again)
#   sudo systemd/install.sh --uninstall            remove services, program and users; keep
#                                                  the history and the config
#   sudo systemd/install.sh --uninstall --purge    ... and the history and the config too
#   sudo systemd/install.sh --fleet [...]          the same for the fleet service instead
#   systemd/install.sh --root DIR                  the same, with every path under DIR
#
# Installing: the Debian packages; the users (retrotread.sysusers) and the directories
# (retrotread.tmpfiles); a copy of the checkout in /opt/retrotread/src and a venv in
# /opt/retrotread/venv with retrotread[pi]; /etc/retrotread/config.toml from
# config.example.toml only when there is none (a config is never overwritten); both units
# enabled and (re)started; then the dashboard's address.
#
# --fleet does the same for the fleet service (install-fleet.sh), on the front desk's PC or
# a server: its own user, unit and fleet.toml, no lgpio, no pins. One machine may hold both
# roles; each touches only its own files, and the program goes with the last one removed.
#
# --root DIR is for tests and image builders: every file is written under DIR and nothing
# touches the running system. Users, directories and the units' enable links are made for
# real inside DIR (systemd-sysusers, systemd-tmpfiles and systemctl all take --root, userdel
# takes --prefix); apt-get, pip and starting the services are printed instead of run, so it
# needs no network.
set -euo pipefail
umask 022 # /opt/retrotread must be readable by the services whatever umask sudo passed on

OPT=/opt/retrotread
VENV=$OPT/venv
SRC=$OPT/src
UNIT_DIR=/usr/local/lib/systemd/system
SYSUSERS_CONF=/usr/local/lib/sysusers.d/retrotread.conf
TMPFILES_CONF=/usr/local/lib/tmpfiles.d/retrotread.conf
CONFIG=/etc/retrotread/config.toml
STATE_DIR=/var/lib/retrotread
RUN_DIR=/run/retrotread
BIN_LINK=/usr/local/bin/retrotread
UNITS=(retrotread-device.service retrotread-web.service)
PACKAGES=(python3 python3-venv avahi-daemon) # avahi-daemon answers for NAME.local
LGPIO_PACKAGE=python3-lgpio
# The treadmill's role; install-fleet.sh's set_fleet_role sets the fleet's.
ROLE=retrotread                        # the name of its sysusers and tmpfiles snippets
OTHER_UNITS=(retrotread-fleet.service) # the other role's, here or not
TEMPLATE=config.example.toml           # in the checkout: the config made when there is none
CONFIG_GROUP=retrotread EXTRAS="[pi]" PORT=8080
USERS_SAID="the users retrotread and retrotread-web" DIRS_SAID="$STATE_DIR and /etc/retrotread"
MADE_SAID="set the pins and caps of your treadmill there" UNITS_SAID="the services"
INSTALLED_SAID="retrotread is installed" MACHINE_SAID=Pi
OS_SAID="Raspberry Pi OS Bookworm or Trixie"

ROOT="" SOURCE="" STEP="starting"
FORCE=0 UNINSTALL=0 PURGE=0 FLEET=0 SAID=0 # SAID: a sentence was printed, the exit trap stays quiet

usage() {
    cat <<'EOF'
Usage: install.sh [--fleet] [--source DIR] [--force] [--root DIR]
       install.sh --uninstall [--fleet] [--purge] [--root DIR]

Installs retrotread on Raspberry Pi OS Bookworm or Trixie as two systemd services,
retrotread-device and retrotread-web. Run it with sudo; run it again to upgrade.

  --fleet       the fleet service instead (retrotread-fleet: every treadmill of the gym on
                one page), on a PC or server with Debian or Raspberry Pi OS; with
                --uninstall, remove it, keeping /var/lib/retrotread-fleet and
                /etc/retrotread/fleet.toml unless --purge
  --source DIR  the retrotread checkout to install (default: the one holding this script)
  --force       install on an OS other than Raspberry Pi OS Bookworm or Trixie
  --uninstall   stop and remove the services, the program and the users; keep the history
                in /var/lib/retrotread and the config in /etc/retrotread
  --purge       with --uninstall: remove the history and the config too
  --root DIR    write every file under DIR instead of /, without touching this system
                (no apt-get, pip or service start): for tests and image builders
  -h, --help    show this help
EOF
}

say() { printf '%s\n' "$*"; }

# One sentence saying what to do, then stop. Exit 2 for a wrong command line, else 1.
die() {
    printf 'install.sh: %s\n' "$1" >&2
    SAID=1
    exit "${2:-1}"
}

# Anything that fails without its own sentence (a full disk under `install`, say) still
# ends with one.
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$SAID" -eq 0 ]; then
        printf 'install.sh: stopped while %s; fix the error shown above, then run install.sh again.\n' \
            "$STEP" >&2
    fi
}
trap on_exit EXIT

step() { STEP=$1 && say "- $1"; }

# A path on the target system: under DIR with --root.
at() { printf '%s%s' "$ROOT" "$1"; }

# A step that changes the running system: under --root it is printed, not run.
on_system() {
    if [ -n "$ROOT" ]; then
        say "  --root: not run: $*"
        return 0
    fi
    "$@"
}

put() { # SOURCE-FILE TARGET-PATH MODE: copy one of our files into place (ours to overwrite)
    install -D -m "$3" "$1" "$(at "$2")"
}

has_line() { [ -f "$(at "$2")" ] && grep -q "^$1:" "$(at "$2")"; }
group_id() { awk -F: -v name="$1" '$1 == name { print $3; exit }' "$(at /etc/group)"; }

other_role_here() { # the fleet on a treadmill, or the reverse
    local unit
    for unit in "${OTHER_UNITS[@]}"; do
        [ ! -e "$(at "$UNIT_DIR/$unit")" ] || return 0
    done
    return 1
}

toml_text() { # FILE TABLE KEY: a quoted value, e.g. toml_text config.toml web listen
    [ -f "$1" ] || return 0
    awk -v table="[$2]" -v key="$3" '
        /^[[:space:]]*\[/ { name = $0; sub(/#.*$/, "", name); gsub(/[[:space:]]/, "", name)
                             inside = (name == table); next }
        inside && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            value = $0
            sub(/^[^=]*=[[:space:]]*["\047]/, "", value)
            sub(/["\047].*$/, "", value)
            print value
            exit
        }' "$1"
}

parse_args() {
    local root_arg="" source_arg=""
    while [ $# -gt 0 ]; do
        case $1 in
            --root | --source)
                if [ $# -lt 2 ] || [ -z "$2" ]; then
                    die "$1 needs a directory; write $1 DIR." 2
                fi
                if [ "$1" = --root ]; then root_arg=$2; else source_arg=$2; fi
                shift 2
                ;;
            --root=*) root_arg=${1#--root=} && shift ;;
            --source=*) source_arg=${1#--source=} && shift ;;
            --force) FORCE=1 && shift ;;
            --uninstall) UNINSTALL=1 && shift ;;
            --purge) PURGE=1 && shift ;;
            --fleet) FLEET=1 && shift ;;
            -h | --help) usage && exit 0 ;;
            *) die "unknown option '$1'; run install.sh --help to see the options." 2 ;;
        esac
    done
    if [ "$PURGE" -eq 1 ] && [ "$UNINSTALL" -eq 0 ]; then
        die "--purge only goes with --uninstall; run install.sh --uninstall --purge." 2
    fi
    if [ "$FLEET" -eq 1 ]; then
        local fleet_part
        fleet_part="$(dirname "${BASH_SOURCE[0]}")/install-fleet.sh"
        [ -f "$fleet_part" ] || die "$fleet_part is missing; run install.sh --fleet from a retrotread checkout." 2
        # shellcheck source-path=SCRIPTDIR source=install-fleet.sh
        source "$fleet_part"
        set_fleet_role
    fi
    if [ -n "$root_arg" ]; then
        [ -d "$root_arg" ] || die "--root $root_arg is not a directory; create it first." 2
        ROOT=$(cd "$root_arg" && pwd -P)
        [ "$ROOT" != / ] || die "--root / is this system; run install.sh without --root." 2
    elif [ "$(id -u)" -ne 0 ]; then
        die "installing retrotread changes the system, so it must run as root; run it again with sudo."
    fi
    if [ "$UNINSTALL" -eq 0 ]; then
        SOURCE=${source_arg:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)}
        if [ ! -f "$SOURCE/pyproject.toml" ] || [ ! -f "$SOURCE/$TEMPLATE" ] \
            || [ ! -f "$SOURCE/systemd/${UNITS[0]}" ]; then
            die "$SOURCE is not a retrotread checkout; pass --source with the folder you cloned." 2
        fi
        SOURCE=$(cd "$SOURCE" && pwd -P)
    fi
}

os_field() { sed -n "s/^$1=//p" "$2" | head -n 1 | tr -d "\"'"; }

check_os() {
    step "checking the OS"
    local file name
    file=$(at /etc/os-release)
    [ -f "$file" ] || file=$(at /usr/lib/os-release)
    if [ -f "$file" ]; then
        case "$(os_field ID "$file"):$(os_field VERSION_CODENAME "$file")" in
            debian:bookworm | debian:trixie | raspbian:bookworm | raspbian:trixie) return 0 ;;
        esac
        name=$(os_field PRETTY_NAME "$file")
    else
        name="an OS without /etc/os-release"
    fi
    if [ "$FORCE" -eq 1 ]; then
        say "  --force: installing on ${name:-an unknown OS} anyway"
        return 0
    fi
    die "this is ${name:-an unknown OS}, not $OS_SAID; install one of those, or pass --force to try anyway."
}

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
available() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

install_packages() {
    step "installing the Debian packages"
    if [ -n "$ROOT" ]; then
        say "  --root: not run: apt-get install ${PACKAGES[*]}${LGPIO_PACKAGE:+ $LGPIO_PACKAGE}"
        return 0
    fi
    local need=() package
    for package in "${PACKAGES[@]}"; do
        installed "$package" || need+=("$package")
    done
    if [ ${#need[@]} -eq 0 ] && { [ -z "$LGPIO_PACKAGE" ] || installed "$LGPIO_PACKAGE"; }; then
        return 0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed; check the Pi's network connection, then run install.sh again."
    # Only Raspberry Pi OS has it; elsewhere pip installs lgpio into the venv. The fleet has
    # no pins and no LGPIO_PACKAGE.
    if [ -n "$LGPIO_PACKAGE" ] && ! installed "$LGPIO_PACKAGE" && available "$LGPIO_PACKAGE"; then
        need+=("$LGPIO_PACKAGE")
    fi
    [ ${#need[@]} -gt 0 ] || return 0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        || die "apt-get could not install ${need[*]}; run 'sudo apt-get install ${need[*]}' to see why, fix that, then run install.sh again."
}

find_python() {
    # Debian's own Python: the venv sees its python3-lgpio (--system-site-packages).
    PYTHON=/usr/bin/python3
    if [ ! -x "$PYTHON" ] && [ -n "$ROOT" ]; then
        PYTHON=$(command -v python3) || die "python3 is not installed; install Python 3.11 or newer."
    fi
    [ -x "$PYTHON" ] || die "python3 is not installed; run 'sudo apt-get install python3', then run install.sh again."
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "retrotread needs Python 3.11 or newer and $PYTHON is older; upgrade to Raspberry Pi OS Bookworm or Trixie."
}

install_users_and_directories() {
    step "creating the users and directories"
    local root_opt=()
    [ -z "$ROOT" ] || root_opt=(--root="$ROOT")
    mkdir -p "$(at /etc)"
    put "$SOURCE/systemd/$ROLE.sysusers" "$SYSUSERS_CONF" 0644
    put "$SOURCE/systemd/$ROLE.tmpfiles" "$TMPFILES_CONF" 0644
    # By name, as at boot: found through systemd's search path, so an admin's copy in
    # /etc/sysusers.d or /etc/tmpfiles.d wins over ours.
    systemd-sysusers "${root_opt[@]}" "${SYSUSERS_CONF##*/}" \
        || die "systemd-sysusers could not create $USERS_SAID; fix the error above, then run install.sh again."
    systemd-tmpfiles "${root_opt[@]}" --create "${TMPFILES_CONF##*/}" \
        || die "systemd-tmpfiles could not create $DIRS_SAID; fix the error above, then run install.sh again."
    # For the fleet only when it is missing: on a treadmill it is retrotread.tmpfiles'
    # (root:retrotread 0775), and retrotread-fleet.tmpfiles leaves it alone.
    [ -d "$(at /etc/retrotread)" ] || install -d -m 0755 "$(at /etc/retrotread)"
}

install_program() {
    step "installing the program in $OPT"
    local src venv link
    src=$(at "$SRC")
    venv=$(at "$VENV")
    # A fresh copy each time: pip then builds there, never in the user's checkout, and no
    # file of an older version lingers.
    rm -rf "$src"
    mkdir -p "$src"
    tar -C "$SOURCE" -cf - --exclude=.git --exclude=.venv --exclude=__pycache__ \
        --exclude='*.egg-info' --exclude=build --exclude=.pytest_cache --exclude=.ruff_cache \
        --exclude=.hypothesis --exclude=test-artifacts --exclude='*.db' --exclude='*.db-*' . \
        | tar -C "$src" --no-same-owner -xf -
    if [ -e "$venv" ] && ! "$venv/bin/python" -c '' 2>/dev/null; then
        say "  the venv's Python no longer runs (an OS upgrade?): making the venv again"
        rm -rf "$venv"
    fi
    if [ ! -e "$venv/bin/python" ]; then
        local without_pip=()
        [ -z "$ROOT" ] || without_pip=(--without-pip) # --root never runs pip
        "$PYTHON" -m venv --system-site-packages "${without_pip[@]}" "$venv" \
            || die "could not create the venv $VENV; run 'sudo apt-get install python3-venv', then run install.sh again."
    fi
    on_system "$venv/bin/python" -m pip install --quiet --upgrade "${src}${EXTRAS}" \
        || die "pip could not install retrotread into $VENV; check the network connection and the error above, then run install.sh again."
    # `retrotread check-config`, `sudo retrotread set-password` on the PATH; a file there that
    # is not our link is left alone.
    link=$(at "$BIN_LINK")
    if [ -e "$link" ] || [ -L "$link" ] && [ "$(readlink "$link")" != "$VENV/bin/retrotread" ]; then
        say "  left $BIN_LINK alone (not ours); the command is $VENV/bin/retrotread"
    else
        mkdir -p "$(dirname "$link")"
        ln -sfn "$VENV/bin/retrotread" "$link"
    fi
}

install_config() {
    step "writing $CONFIG"
    local config gid
    config=$(at "$CONFIG")
    if [ -e "$config" ] || [ -L "$config" ]; then
        say "  kept your $CONFIG (never overwritten; new keys are in $SRC/$TEMPLATE)"
        return 0
    fi
    gid=$(group_id "$CONFIG_GROUP")
    [ -n "$gid" ] || die "the group $CONFIG_GROUP is missing; run install.sh again to create it."
    # Renamed into place, so a power cut never leaves half a config.
    install -m 0644 -o 0 -g "$gid" "$SOURCE/$TEMPLATE" "$config.new"
    mv -f "$config.new" "$config"
    say "  made $CONFIG from ${TEMPLATE##*/}: $MADE_SAID"
}

check_config() {
    step "checking $CONFIG"
    if [ -n "$ROOT" ]; then
        say "  --root: not run: $VENV/bin/retrotread check-config $CONFIG"
        return 0
    fi
    "$VENV/bin/retrotread" check-config "$CONFIG" >/dev/null \
        || die "$CONFIG has an error (named above); fix it, then run install.sh again."
}

install_units() {
    step "installing and starting $UNITS_SAID"
    local unit
    for unit in "${UNITS[@]}"; do
        put "$SOURCE/systemd/$unit" "$UNIT_DIR/$unit" 0644
    done
    # A fleet service beside a treadmill runs the program just replaced: restarted too.
    START=("${UNITS[@]}")
    if [ "$FLEET" -eq 1 ]; then
        fleet_units_to_start
    elif other_role_here; then
        START+=("${OTHER_UNITS[@]}")
    fi
    if [ -n "$ROOT" ]; then
        systemctl --root="$ROOT" --quiet enable "${UNITS[@]}" 2>/dev/null \
            || die "systemctl could not enable ${UNITS[*]} under $ROOT; check the unit files."
        say "  --root: not run: systemctl daemon-reload${START[*]:+; systemctl restart ${START[*]}}"
        return 0
    fi
    systemctl daemon-reload \
        || die "systemctl daemon-reload failed; retrotread needs a system booted with systemd, as Raspberry Pi OS is."
    systemctl --quiet enable "${UNITS[@]}" \
        || die "systemctl could not enable ${UNITS[*]}; fix the error above, then run install.sh again."
    # A restart, so an upgrade takes effect; an open session is saved and ended.
    for unit in "${START[@]}"; do
        systemctl restart "$unit" \
            || die "$unit did not start; read why with 'journalctl -u $unit -n 30', fix that, then run install.sh again."
    done
}

print_address() {
    local listen port name address
    listen=$(toml_text "$(at "$CONFIG")" web listen)
    listen=${listen:-0.0.0.0:$PORT}
    port=${listen##*:}
    case $port in '' | *[!0-9]*) port=$PORT ;; esac
    say ""
    case $listen in
        127.* | localhost:* | '[::1]:'*)
            say "$INSTALLED_SAID. The dashboard: http://127.0.0.1:$port/ (this $MACHINE_SAID only, as [web] listen says)."
            ;;
        *)
            name=$(hostname 2>/dev/null || true)
            address=$(hostname -I 2>/dev/null | awk '{ print $1 }' || true)
            say "$INSTALLED_SAID. Open the dashboard: http://${name:-raspberrypi}.local:$port/"
            [ -z "$address" ] || say "  (or http://$address:$port/)"
            ;;
    esac
    if [ "$FLEET" -eq 1 ]; then
        print_fleet_steps
    else
        say "Set the admin password for the controls and settings: sudo retrotread set-password"
    fi
}

remove_account() { # KIND NAME: KIND is user or group
    local file=/etc/passwd prefix_opt=()
    [ "$1" = user ] || file=/etc/group
    has_line "$2" "$file" || return 0
    [ -z "$ROOT" ] || prefix_opt=(--prefix "$ROOT")
    "${1}del" "${prefix_opt[@]}" "$2" \
        || die "${1}del could not remove the $1 $2; stop whatever runs as it, then run install.sh --uninstall again."
}

uninstall() {
    step "stopping and removing the services"
    local unit present=() link
    for unit in "${UNITS[@]}"; do
        [ ! -e "$(at "$UNIT_DIR/$unit")" ] || present+=("$unit")
    done
    if [ ${#present[@]} -gt 0 ] && [ -n "$ROOT" ]; then
        systemctl --root="$ROOT" --quiet disable "${present[@]}" 2>/dev/null \
            || die "systemctl could not disable ${present[*]} under $ROOT; remove their links by hand."
    elif [ ${#present[@]} -gt 0 ]; then
        systemctl --quiet disable --now "${present[@]}" \
            || die "systemctl could not stop ${present[*]}; fix the error above, then run install.sh --uninstall again."
    fi
    for unit in "${UNITS[@]}"; do
        rm -f "$(at "$UNIT_DIR/$unit")"
    done
    [ ${#present[@]} -eq 0 ] || on_system systemctl daemon-reload

    step "removing the program and the users"
    link=$(at "$BIN_LINK")
    if other_role_here; then
        say "  kept the program in $OPT: ${OTHER_UNITS[*]} still run it"
    else
        if [ -L "$link" ] && [ "$(readlink "$link")" = "$VENV/bin/retrotread" ]; then
            rm -f "$link"
        fi
        rm -rf "$(at "$OPT")"
    fi
    if [ "$FLEET" -eq 1 ]; then
        uninstall_fleet_rest
        return 0
    fi
    rm -rf "$(at "$RUN_DIR")"
    remove_account user retrotread-web
    remove_account user retrotread
    remove_account group retrotread
    rm -f "$(at "$SYSUSERS_CONF")" "$(at "$TMPFILES_CONF")"
    # The fleet stays: /etc/retrotread must not stay writable by a group id now free.
    if other_role_here && [ -d "$(at /etc/retrotread)" ]; then
        chown 0:0 "$(at /etc/retrotread)" && chmod 0755 "$(at /etc/retrotread)"
    fi

    if [ "$PURGE" -eq 1 ]; then
        step "removing the history and the config (--purge)"
        rm -rf "$(at "$STATE_DIR")" "$(at "$CONFIG")"
        # /etc/retrotread too, unless the fleet's fleet.toml is in it
        other_role_here || rm -rf "$(at /etc/retrotread)"
        say "retrotread is removed, with its history and config."
    else
        say "retrotread is removed. Kept: the history in $STATE_DIR and the config in /etc/retrotread (install.sh --uninstall --purge removes them)."
    fi
}

main() {
    parse_args "$@"
    if [ "$UNINSTALL" -eq 1 ]; then
        uninstall
        return 0
    fi
    say "Installing $ROLE from $SOURCE${ROOT:+ under $ROOT}"
    check_os
    install_packages
    find_python
    install_users_and_directories
    install_program
    install_config
    check_config
    install_units
    print_address
}

main "$@"
