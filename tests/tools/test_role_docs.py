"""tools/role_docs.py: README variable tables from meta/argument_specs.yml."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SPEC = textwrap.dedent("""\
    ---
    argument_specs:
      install:
        short_description: Install the thing
        description:
          - Used with O(demo_venv) set to a new virtualenv.
        options:
          demo_venv: &venv
            type: path
            description:
              - Virtualenv to install into.
      main:
        short_description: The demo role
        options:
          demo_port:
            type: int
            default: 8001
            description:
              - Port of C(demo:demo0); see U(https://example.org/ports).
          demo_mode:
            type: str
            default: unix
            choices: [unix, tcp]
            description:
              - C(unix) or C(tcp).
              - I(Never) a public address.
          demo_venv: *venv
          demo_version:
            type: str
            default: '0.12'
            description: Pinned version, see L(the notes,https://example.org/notes).
          demo_instances:
            type: list
            elements: dict
            default:
              - name: web1
            description:
              - The instances; O(demo_instances[].name=web1) is the first.
            options:
              name:
                type: str
                required: true
                description:
                  - Instance name (a|b).
              socket:
                type: str
                description:
                  - Empty for C(<run>/<name>.sock).
    """)

PROSE_BEFORE = '# demo\n\nWhat the role does.\n\n'
PROSE_AFTER = '\n## Example\n\nUse it.\n'


@pytest.fixture
def tree(tmp_path):
    role = tmp_path / 'roles' / 'demo'
    (role / 'meta').mkdir(parents=True)
    (role / 'meta' / 'argument_specs.yml').write_text(SPEC)
    (tmp_path / 'galaxy.yml').write_text('---\nnamespace: acme\nname: web\n')
    return tmp_path


def readme_of(tree):
    return (tree / 'roles' / 'demo' / 'README.md').read_text()


def test_section_tables_anchor_and_nested_options(role_docs, tree):
    section = role_docs.render_section(tree / 'roles' / 'demo')
    lines = section.splitlines()
    assert lines[0] == role_docs.BEGIN_MARKER
    assert lines[-1] == role_docs.END_MARKER
    # main first, although the spec lists install first; then the others
    main = lines.index('### Entry point `main`')
    install = lines.index('### Entry point `install` (`tasks_from: install`)')
    nested = lines.index('#### Keys of each element of `demo_instances`')
    assert main < nested < install
    assert '| `demo_port` | int | `8001` | no |  | Port of `demo:demo0`; see <https://example.org/ports>. |' in lines
    assert '| `demo_mode` | str | `unix` | no | `unix`, `tcp` | `unix` or `tcp`. *Never* a public address. |' in lines
    # the alias resolves to the anchored option, in both entry points
    assert lines.count('| `demo_venv` | path |  | no |  | Virtualenv to install into. |') == 2
    assert '| `demo_version` | str | `"0.12"` | no |  | Pinned version, see [the notes](https://example.org/notes). |' in lines
    assert ('| `demo_instances` | list of dict | `[{name: web1}]` | no |  | The instances; '
            '`demo_instances[].name=web1` is the first. Keys in the table below. |') in lines
    assert '| `name` | str |  | yes |  | Instance name (a\\|b). |' in lines
    assert '| `socket` | str |  | no |  | Empty for `<run>/<name>.sock`. |' in lines
    assert 'Install the thing. Used with `demo_venv` set to a new virtualenv.' in lines
    # spec order inside a table
    names = [line.split('|')[1].strip() for line in lines[main:nested] if line.startswith('| `')]
    assert names == ['`demo_port`', '`demo_mode`', '`demo_venv`', '`demo_version`', '`demo_instances`']


def test_section_is_deterministic(role_docs, tree):
    first = role_docs.render_section(tree / 'roles' / 'demo')
    assert role_docs.render_section(tree / 'roles' / 'demo') == first


@pytest.mark.parametrize('text, expected', [
    ('O(a_b=1) and V(x)', '`a_b=1` and `x`'),
    ('C(foo(bar)) then C(|)', '`foo(bar)` then `\\|`'),
    ('B(bold) I(it) M(ns.col.mod) E(ENV)', '**bold** *it* `ns.col.mod` `ENV`'),
    ('R(the text,ref) <tag> a|b', 'the text &lt;tag> a\\|b'),
    ('ABC(x) is not markup', 'ABC(x) is not markup'),
    ('broken C(no end', 'broken C(no end'),
    ('with (C(home)) inside', 'with (`home`) inside'),
])
def test_markup(role_docs, text, expected):
    assert role_docs.markdown(text) == expected


@pytest.mark.parametrize('value, expected', [
    ('plain', 'plain'),
    ('0.12', '"0.12"'),
    ('', '""'),
    ('off', '"off"'),
    ("{{ x | default('y') }}", '"{{ x | default(\'y\') }}"'),
    ('*.pyc', '"*.pyc"'),
    (True, 'true'),
    (None, 'null'),
    ([], '[]'),
    ({'a': [1, 'b c']}, '{a: [1, b c]}'),
])
def test_flow(role_docs, value, expected):
    assert role_docs.flow(value) == expected


def test_long_default_is_summarised(role_docs, tmp_path):
    option = {'default': {'K%02d' % i: 'a value long enough' for i in range(5)}}
    assert role_docs.default_cell(option, tmp_path) == 'dict of 5 keys'
    (tmp_path / 'defaults').mkdir()
    (tmp_path / 'defaults' / 'main.yml').write_text('---\n')
    assert role_docs.default_cell(option, tmp_path) == 'dict of 5 keys (see `defaults/main.yml`)'


def test_readme_without_markers_appended_then_equal(role_docs, tree, capsys):
    readme = tree / 'roles' / 'demo' / 'README.md'
    readme.write_text(PROSE_BEFORE.rstrip('\n') + '\n')
    assert role_docs.main(['--root', str(tree), '--check']) == 1
    out = capsys.readouterr().out
    assert 'roles/demo/README.md: no generated section (markers missing)' in out
    assert out.rstrip().endswith('run: python tools/role_docs.py')
    assert readme.read_text() == PROSE_BEFORE.rstrip('\n') + '\n'

    assert role_docs.main(['--root', str(tree)]) == 0
    text = readme_of(tree)
    assert text.startswith(PROSE_BEFORE + role_docs.BEGIN_MARKER + '\n')
    assert text.endswith(role_docs.END_MARKER + '\n')

    capsys.readouterr()
    assert role_docs.main(['--root', str(tree), '--check']) == 0
    assert role_docs.main(['--root', str(tree)]) == 0
    assert capsys.readouterr().out == ''
    assert readme_of(tree) == text


def test_stale_readme_detected_and_prose_kept(role_docs, tree, capsys):
    readme = tree / 'roles' / 'demo' / 'README.md'
    old = PROSE_BEFORE + role_docs.BEGIN_MARKER + '\n| hand | written |\n' + role_docs.END_MARKER + '\n' + PROSE_AFTER
    readme.write_text(old)
    assert role_docs.main(['--root', str(tree), '--check']) == 1
    out = capsys.readouterr().out
    assert 'roles/demo/README.md: stale: differs from meta/argument_specs.yml' in out
    assert 'run: python tools/role_docs.py' in out
    assert readme.read_text() == old

    assert role_docs.main(['--root', str(tree)]) == 0
    text = readme.read_text()
    assert text.startswith(PROSE_BEFORE + role_docs.BEGIN_MARKER)
    assert text.endswith(role_docs.END_MARKER + '\n' + PROSE_AFTER)
    assert '| hand | written |' not in text
    assert role_docs.main(['--root', str(tree), '--check']) == 0

    # a spec change makes it stale again
    spec = tree / 'roles' / 'demo' / 'meta' / 'argument_specs.yml'
    spec.write_text(spec.read_text().replace('default: 8001', 'default: 9001'))
    capsys.readouterr()
    assert role_docs.main(['--root', str(tree), '--check']) == 1
    assert 'stale' in capsys.readouterr().out


def test_missing_readme_created_with_title(role_docs, tree, capsys):
    assert role_docs.main(['--root', str(tree), '--check']) == 1
    assert 'roles/demo/README.md: missing' in capsys.readouterr().out
    assert role_docs.main(['--root', str(tree)]) == 0
    assert readme_of(tree).startswith('# acme.web.demo\n\n' + role_docs.BEGIN_MARKER)


def test_role_without_spec_skipped(role_docs, tree, capsys):
    (tree / 'roles' / 'nospec').mkdir()
    assert role_docs.main(['--root', str(tree)]) == 0
    assert 'skipped roles/nospec' in capsys.readouterr().err
    assert not (tree / 'roles' / 'nospec' / 'README.md').exists()


def test_bad_markers_and_bad_spec_fail(role_docs, tree, capsys):
    readme = tree / 'roles' / 'demo' / 'README.md'
    readme.write_text(role_docs.END_MARKER + '\n' + role_docs.BEGIN_MARKER + '\n')
    assert role_docs.main(['--root', str(tree)]) == 2
    assert 'markers must appear once each' in capsys.readouterr().err
    (tree / 'roles' / 'demo' / 'meta' / 'argument_specs.yml').write_text('---\nargument_specs: [\n')
    assert role_docs.main(['--root', str(tree), '--check']) == 2
    assert 'demo/meta/argument_specs.yml: not valid YAML' in capsys.readouterr().err


def test_merge_key_options_stay_where_the_merge_stands(role_docs):
    text = textwrap.dedent("""\
        base: &base
          b: {type: int, default: 1}
          c: {type: int, default: 2}
        other: &other
          c: {type: str}
          d: {type: str}
        options:
          a: {type: str}
          <<: [*base, *other]
          b: {type: bool}
          e: {type: str}
        """)
    options = role_docs.yaml.load(text, Loader=role_docs.SpecLoader)['options']
    # each option where its winning definition stands
    assert list(options) == ['a', 'c', 'd', 'b', 'e']
    # the mapping's own key wins over a merged one, the earlier merge over the later
    assert options['b'] == {'type': 'bool'}
    assert options['c'] == {'type': 'int', 'default': 2}
    # PyYAML's safe loader gives the same values
    assert role_docs.yaml.safe_load(text)['options'] == options


def test_command_line(tree):
    script = Path(__file__).resolve().parents[2] / 'tools' / 'role_docs.py'
    run = [sys.executable, str(script), '--root', str(tree)]
    check = subprocess.run(run + ['--check'], capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert check.stdout.splitlines() == ['role_docs: roles/demo/README.md: missing', 'run: python tools/role_docs.py']
    assert subprocess.run(run, capture_output=True, text=True, check=False).returncode == 0
    assert subprocess.run(run + ['--check'], capture_output=True, text=True, check=False).returncode == 0
