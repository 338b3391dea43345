"""tools/yaml_dupes.py: identical windows of significant YAML lines."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCK = textwrap.dedent("""\
    - name: Write the ini
      ansible.builtin.template:
        src: app.ini.j2
        dest: /etc/app.ini
        mode: "0644"
      notify: app restart
    """)


def write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_dupes_across_two_files_despite_indent_comments_blanks(yaml_dupes, tmp_path):
    write(tmp_path, 'roles/a/tasks/main.yml', '---\n' + BLOCK)
    copy = textwrap.indent(BLOCK, '    ').replace('      src:', '# a comment\n\n      src:', 1)
    write(tmp_path, 'playbooks/site.yml', '---\n- hosts: all\n  tasks:\n' + copy)
    groups = yaml_dupes.duplicate_groups(tmp_path)
    # 6 significant lines: 2 windows of 5, each found in both files
    assert groups == [
        ([('playbooks/site.yml', 4), ('roles/a/tasks/main.yml', 2)], '- name: Write the ini'),
        ([('playbooks/site.yml', 5), ('roles/a/tasks/main.yml', 3)], 'ansible.builtin.template:'),
    ]


def test_dupes_within_one_file_and_unique_text(yaml_dupes, tmp_path):
    write(tmp_path, 'roles/a/tasks/main.yml', '---\n' + BLOCK + '- name: Other\n  ansible.builtin.debug:\n' + BLOCK)
    assert [where for where, _ in yaml_dupes.duplicate_groups(tmp_path)] == [
        [('roles/a/tasks/main.yml', 2), ('roles/a/tasks/main.yml', 10)],
        [('roles/a/tasks/main.yml', 3), ('roles/a/tasks/main.yml', 11)],
    ]
    write(tmp_path, 'roles/b/tasks/main.yml', BLOCK.replace('/etc/app.ini', '/etc/b.ini'))
    assert len(yaml_dupes.duplicate_groups(tmp_path)) == 2


def test_comment_and_blank_lines_never_form_windows(yaml_dupes, tmp_path):
    comments = '---\n# one\n# two\n\n# three\n# four\n# five\n...\n'
    write(tmp_path, 'roles/a/defaults/main.yml', comments + 'a: 1\n')
    write(tmp_path, 'roles/b/defaults/main.yml', comments + 'b: 2\n')
    assert yaml_dupes.duplicate_groups(tmp_path) == []


def test_generic_windows_ignored(yaml_dupes, tmp_path):
    generic = 'state: link\nforce: true\nfollow: false\nowner: root\ngroup: root\nmode: "0644"\n'
    write(tmp_path, 'roles/a/tasks/main.yml', '---\n' + generic)
    write(tmp_path, 'roles/b/tasks/main.yml', '---\n' + generic)
    assert yaml_dupes.duplicate_groups(tmp_path) == []
    # one specific line in the window makes it count
    write(tmp_path, 'roles/a/tasks/main.yml', '---\npath: /srv/x\n' + generic)
    write(tmp_path, 'roles/b/tasks/main.yml', '---\npath: /srv/x\n' + generic)
    groups = yaml_dupes.duplicate_groups(tmp_path)
    assert [first for _, first in groups] == ['path: /srv/x']


@pytest.mark.parametrize('line, generic', [
    ('owner: root', True),
    ('- state: absent', True),
    ('mode: "{{ item.mode }}"', True),
    ('path: /srv', False),
    ('- name: Owner is root', False),
    ('ownership: root', False),
])
def test_is_generic(yaml_dupes, line, generic):
    assert yaml_dupes.is_generic(line) is generic


def test_only_searched_yaml_outside_excluded_dirs(yaml_dupes, tmp_path):
    for rel in ('roles/a/.venv/x.yml', 'roles/a/build/x.yml', 'benchmarks/results/x.yml',
                'changelogs/x.yml', 'docs/x.yml', 'roles/a/tasks/x.txt'):
        write(tmp_path, rel, BLOCK)
    write(tmp_path, 'examples/inventory/hosts.yml', BLOCK)
    write(tmp_path, '.config/molecule/config.yaml', BLOCK)
    assert yaml_dupes.yaml_files(tmp_path, yaml_dupes.SEARCHED) == [
        '.config/molecule/config.yaml', 'examples/inventory/hosts.yml']
    assert len(yaml_dupes.duplicate_groups(tmp_path)) == 2
    assert yaml_dupes.yaml_files(tmp_path, ('docs',)) == ['docs/x.yml']


def test_cli_summary_window_and_max(yaml_dupes, tmp_path, capsys):
    write(tmp_path, 'roles/a/tasks/main.yml', BLOCK)
    write(tmp_path, 'roles/b/tasks/main.yml', BLOCK)
    root = ['--root', str(tmp_path)]
    assert yaml_dupes.main(root) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        'roles/a/tasks/main.yml:1, roles/b/tasks/main.yml:1: - name: Write the ini',
        'roles/a/tasks/main.yml:2, roles/b/tasks/main.yml:2: ansible.builtin.template:',
        'yaml_dupes: 4 duplicated 5-line windows in 2 groups',
    ]
    assert yaml_dupes.main(root + ['--max', '4']) == 0
    capsys.readouterr()
    assert yaml_dupes.main(root + ['--max', '3']) == 1
    assert 'more than the 3 allowed' in capsys.readouterr().out
    assert yaml_dupes.main(root + ['--max', '4', '--quiet']) == 0
    assert capsys.readouterr().out == 'yaml_dupes: 4 duplicated 5-line windows in 2 groups\n'
    assert yaml_dupes.main(root + ['--max', '3', '--quiet']) == 1
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert yaml_dupes.main(root + ['--window', '6']) == 0
    assert capsys.readouterr().out.splitlines()[-1] == 'yaml_dupes: 2 duplicated 6-line windows in 1 groups'
    assert yaml_dupes.main(root + ['--window', '7', '--max', '0']) == 0
    assert capsys.readouterr().out == 'yaml_dupes: 0 duplicated 7-line windows in 0 groups\n'


def test_command_line(tmp_path):
    write(tmp_path, 'roles/a/tasks/main.yml', BLOCK)
    write(tmp_path, 'molecule/x/converge.yml', BLOCK)
    script = Path(__file__).resolve().parents[2] / 'tools' / 'yaml_dupes.py'
    run = [sys.executable, str(script), '--root', str(tmp_path), '--quiet', '--max']
    ok = subprocess.run(run + ['4'], capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout) == (0, 'yaml_dupes: 4 duplicated 5-line windows in 2 groups\n')
    assert subprocess.run(run + ['3'], capture_output=True, text=True, check=False).returncode == 1
