# shellcheck shell=bash disable=SC2034 # what set_fleet_role sets, install.sh reads
# The fleet role of systemd/install.sh (`install.sh --fleet`): sourced by it, never run on its
# own. install.sh does the steps both roles share (packages, venv, users from the role's
# snippet, config from the role's template, units); this file holds what only the fleet does:
# its names, waiting for its broker password file, its next steps, and its uninstall.

set_fleet_role() {
    ROLE=retrotread-fleet
    UNITS=(retrotread-fleet.service)
    OTHER_UNITS=(retrotread-device.service retrotread-web.service)
    SYSUSERS_CONF=/usr/local/lib/sysusers.d/retrotread-fleet.conf
    TMPFILES_CONF=/usr/local/lib/tmpfiles.d/retrotread-fleet.conf
    CONFIG=/etc/retrotread/fleet.toml
    STATE_DIR=/var/lib/retrotread-fleet
    TEMPLATE=systemd/fleet.example.toml
    CONFIG_GROUP=root # only the admin writes it, and it holds no password
    EXTRAS=""         # no pins, so no lgpio
    LGPIO_PACKAGE=""
    PORT=8090 # [web] listen's port when fleet.toml has none
    USERS_SAID="the user retrotread-fleet"
    DIRS_SAID=$STATE_DIR
    MADE_SAID="set the broker and the site of your gym there"
    UNITS_SAID="the fleet service"
    INSTALLED_SAID="retrotread fleet is installed"
    OS_SAID="Debian or Raspberry Pi OS, Bookworm or Trixie"
    MACHINE_SAID=machine
}

# Not started while its password file is missing: it would only stop again at once with
# exit code 2. A treadmill's services beside it are not restarted either (someone may be on
# the belt), only told about.
fleet_units_to_start() {
    local secret
    secret=$(toml_text "$(at "$CONFIG")" fleet password_file)
    if [ -n "$secret" ] && [ ! -e "$(at "$secret")" ]; then
        START=()
        say "  enabled, not started: it logs in to the broker with $secret, which is not there yet"
    fi
    if other_role_here; then
        say "  the treadmill's services here still run the program they started with; restart them while the belt is stopped: sudo systemctl restart ${OTHER_UNITS[*]}"
    fi
}

# What is left to do by hand: the fleet's login on the broker, that password in a file only
# its user reads, a look at fleet.toml, and the admin password for the history pages.
print_fleet_steps() {
    local user secret
    user=$(toml_text "$(at "$CONFIG")" fleet username)
    secret=$(toml_text "$(at "$CONFIG")" fleet password_file)
    say "Next steps:"
    if [ -n "$secret" ] && [ ! -e "$(at "$secret")" ]; then
        say "- On the broker, give the fleet its login: sudo mosquitto_passwd /etc/mosquitto/retrotread.passwd ${user:-fleet}"
        say "- Put the same password in $secret, readable by the user retrotread-fleet only (type it, Enter, Ctrl-D):"
        say "    sudo install -m 0640 -o root -g retrotread-fleet /dev/stdin $secret"
    elif [ -n "$secret" ] && [ -n "$(find "$(at "$secret")" -maxdepth 0 -perm -o=r 2>/dev/null)" ]; then
        say "- $secret can be read by every user here; make it retrotread-fleet's only: sudo chown root:retrotread-fleet $secret && sudo chmod 0640 $secret"
    fi
    say "- Check the broker and the site in $CONFIG, then start it: sudo systemctl restart retrotread-fleet"
    if [ ! -e "$(at "$STATE_DIR/admin-password")" ]; then
        say "- Set the admin password for the fleet's history: sudo retrotread set-password --state-dir $STATE_DIR"
    fi
}

# After install.sh has removed the unit (and the program, if no treadmill needs it).
uninstall_fleet_rest() {
    local secret
    secret=$(toml_text "$(at "$CONFIG")" fleet password_file)
    remove_account user retrotread-fleet
    remove_account group retrotread-fleet
    rm -f "$(at "$SYSUSERS_CONF")" "$(at "$TMPFILES_CONF")"
    if [ "$PURGE" -eq 0 ]; then
        say "retrotread fleet is removed. Kept: its sessions in $STATE_DIR and its config in $CONFIG (install.sh --uninstall --fleet --purge removes them)."
        return 0
    fi
    step "removing the fleet's sessions and config (--purge)"
    rm -rf "$(at "$STATE_DIR")"
    # Only our files: a treadmill's config.toml may share /etc/retrotread, and a password
    # file the admin keeps elsewhere is theirs.
    rm -f "$(at "$CONFIG")"
    case $secret in /etc/retrotread/*) rm -f "$(at "$secret")" ;; esac
    [ ! -d "$(at /etc/retrotread)" ] || rmdir --ignore-fail-on-non-empty "$(at /etc/retrotread)"
    say "retrotread fleet is removed, with its sessions and config."
}
