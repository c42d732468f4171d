"""Scripts/pg.sh keeps the embedded cluster's secrets private."""
import os
import stat
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DATA = os.path.join(ROOT, ".data")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_and_password_files_are_private():
    subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "env"], check=True, capture_output=True)
    assert mode(DATA) == 0o700
    assert mode(os.path.join(DATA, "pg-password")) == 0o600
    assert mode(os.path.join(DATA, "pgpass")) == 0o600


def test_the_password_is_in_no_log_and_no_command_line():
    password = open(os.path.join(DATA, "pg-password")).read().strip()
    env = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "env"], check=True, capture_output=True, text=True).stdout
    assert password not in env
    # pg.sh psql reaches the database without the password in its arguments.
    out = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "psql", "-Atc", "SELECT 1"], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "1"
    location = os.path.join(DATA, "pg-location")
    cluster = open(location).read().strip() if os.path.exists(location) else os.path.join(DATA, "pg")
    log = os.path.join(cluster, "server.log")
    if os.path.exists(log):
        assert password not in open(log, errors="replace").read()
