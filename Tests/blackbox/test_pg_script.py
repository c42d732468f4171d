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


def test_a_second_checkout_on_the_machine_gets_a_port_of_its_own(tmp_path):
    """A second checkout cannot take the first one's port: it picks the next free one and
    records it, and says which variable changes it when a port is taken."""
    import shutil
    mine = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "env"], check=True, capture_output=True, text=True).stdout
    my_port = next(p.split("=")[1] for p in mine.split() if p.startswith("PGPORT="))
    other = tmp_path / "second"
    subprocess.run(["git", "clone", "-q", ROOT, str(other)], check=True)
    pg = str(other / "Scripts/pg.sh")
    try:
        started = subprocess.run([pg, "start"], capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        out = started.stdout
        port = open(other / ".data/pg-port").read().strip()
        assert port != my_port and f"127.0.0.1:{port}" in out
        assert subprocess.run([pg, "psql", "-Atc", "SELECT 1"], check=True, capture_output=True, text=True).stdout.strip() == "1"
        # Told to use the first checkout's port, it names the conflict and the variable.
        subprocess.run([pg, "stop"], check=True, capture_output=True)
        taken = subprocess.run([pg, "start"], capture_output=True, text=True, env={**os.environ, "ESAYLOV_PG_PORT": my_port})
        assert taken.returncode != 0 and f"port {my_port}" in taken.stderr and "ESAYLOV_PG_PORT" in taken.stderr
    finally:
        subprocess.run([pg, "stop"], capture_output=True)
        location = other / ".data/pg-location"
        if location.exists():
            shutil.rmtree(os.path.dirname(location.read_text().strip()), ignore_errors=True)
        else:
            shutil.rmtree(other / ".data/pg", ignore_errors=True)
