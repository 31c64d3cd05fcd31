#!/usr/bin/env bash
# Install or upgrade sezim-bot on a Debian/Ubuntu server, the way README "Going live" says.
#
#   sudo deploy/install.sh        from a checkout (the first time: git clone it anywhere)
#
# What it does (each step safe to run again, so an upgrade is: git pull, then this):
#   1. a `sezim-bot` system user with no login;
#   2. the code in /opt/sezim-bot, owned by root (the service cannot change it);
#   3. a Python environment there with the locked dependencies, without development tools;
#   4. /etc/sezim-bot: config.toml (0640, the database in the state directory) and env
#      (0600, root's: SEZIM_SECRET_KEY generated once, SEZIM_BOT_TOKEN for you to fill);
#   5. /var/lib/sezim-bot, the state directory (0700, the service's own);
#   6. the hardened unit /etc/systemd/system/sezim-bot.service, and /usr/local/bin/sezim-bot,
#      which runs any command as the service would (`sudo sezim-bot staff list`);
#   7. the database migrations, then `sezim-bot check`.
# SEZIM_ROOT=DIR installs under DIR instead of / (the tests do); systemctl is left alone.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${SEZIM_ROOT:-}"
NAME=sezim-bot
CODE="$ROOT/opt/sezim-bot"
STATE="$ROOT/var/lib/sezim-bot"
CONF="$ROOT/etc/sezim-bot"
UNITS="$ROOT/etc/systemd/system"
BIN="$ROOT/usr/local/bin"
PYTHON="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run it as root (sudo $0)" >&2
  exit 1
fi
umask 022

step "1. the $NAME system user"
prefix=()
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT/etc"
  for file in passwd group shadow gshadow; do
    [ -e "$ROOT/etc/$file" ] || { [ -e "/etc/$file" ] && cp -p "/etc/$file" "$ROOT/etc/$file"; } || true
  done
  prefix=(--prefix "$ROOT")
fi
if ! grep -q "^$NAME:" "$ROOT/etc/passwd"; then
  useradd "${prefix[@]}" --system --user-group --home-dir /var/lib/sezim-bot --no-create-home \
    --shell /usr/sbin/nologin --comment "sezim-bot service" "$NAME"
fi
uid=$(awk -F: -v u="$NAME" '$1 == u { print $3 }' "$ROOT/etc/passwd")
gid=$(awk -F: -v u="$NAME" '$1 == u { print $4 }' "$ROOT/etc/passwd")
echo "user $NAME ($uid:$gid)"

step "2. the code in /opt/sezim-bot (root's; read-only to the service)"
install -d -m 0755 -o root -g root "$CODE"
if [ "$SRC" != "$(cd "$CODE" && pwd)" ]; then
  (cd "$SRC" && tar --exclude=./.venv --exclude=./.git --exclude='*.db' --exclude='*.db-*' \
     --exclude=__pycache__ --exclude=.mypy_cache --exclude=.pytest_cache --exclude=.ruff_cache \
     --exclude=.hypothesis --exclude='*.egg-info' -cf - .) | tar -C "$CODE" -xf -
fi
chown -R root:root "$CODE"
chmod -R go-w "$CODE"

step "3. the Python environment (locked versions, no development tools)"
[ -x "$CODE/.venv/bin/python" ] || "$PYTHON" -m venv "$CODE/.venv"
"$CODE/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$CODE/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c "$CODE/requirements.lock" "$CODE"
chmod -R go-w "$CODE/.venv"

step "4. the configuration in /etc/sezim-bot"
install -d -m 0750 -o root -g "$gid" "$CONF"
if [ ! -e "$CONF/config.toml" ]; then
  sed "s|^url = \"sqlite+aiosqlite:///sezim.db\"|url = \"sqlite+aiosqlite:///$STATE/sezim.db\"|" \
    "$CODE/config.example.toml" > "$CONF/config.toml"
  echo "wrote $CONF/config.toml: set [organization] and [emergency] for your center"
fi
chown root:"$gid" "$CONF/config.toml"
chmod 0640 "$CONF/config.toml"
if [ ! -e "$CONF/env" ]; then
  key=$("$CODE/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))')
  (umask 077 && printf '# Secrets for sezim-bot (read by systemd as root; keep it 0600).\n# Keep a copy of SEZIM_SECRET_KEY apart from the server: without it no backup can be read.\nSEZIM_BOT_TOKEN=\nSEZIM_SECRET_KEY=%s\n' "$key" > "$CONF/env")
  echo "wrote $CONF/env with a new SEZIM_SECRET_KEY; put the bot token from @BotFather in it"
fi
chown root:root "$CONF/env"
chmod 0600 "$CONF/env"

step "5. the state directory /var/lib/sezim-bot"
install -d -m 0700 -o "$uid" -g "$gid" "$STATE"

step "6. the service unit and the sezim-bot command"
install -d -m 0755 "$UNITS" "$BIN"
install -m 0644 "$CODE/deploy/sezim-bot.service" "$UNITS/sezim-bot.service"
cat > "$BIN/sezim-bot" <<WRAPPER
#!/usr/bin/env bash
# Any sezim-bot command as the service runs it: its user, its secrets, its configuration.
set -euo pipefail
[ "\$(id -u)" = 0 ] || { echo "sezim-bot: run it with sudo" >&2; exit 1; }
set -a; . "$CONF/env"; set +a
cd "$STATE"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \\
  "$CODE/.venv/bin/sezim-bot" --config "$CONF/config.toml" "\$@"
WRAPPER
chmod 0755 "$BIN/sezim-bot"

step "7. the database, then the pre-flight check"
"$BIN/sezim-bot" db upgrade
if "$BIN/sezim-bot" check; then
  ready=yes
else
  ready=no
fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$ready" = yes ]; then
    systemctl enable sezim-bot
    systemctl restart sezim-bot
    echo "sezim-bot is running: journalctl -u sezim-bot -f"
  fi
fi
if [ "$ready" = no ]; then
  echo
  echo "Mend what the check says FAIL (the bot token goes in $CONF/env), run"
  echo "  sudo sezim-bot check"
  echo "and when it passes: sudo systemctl enable --now sezim-bot"
fi
