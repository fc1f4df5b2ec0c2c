"""Scripted OS tasks, one per task type of the os skill (by the type's name): the user's
request, the os_check key, the teacher's commands and its final answer (None: the count the
last command printed, or finish after a change). Each key passes its own self_check in the
sandbox."""

from __future__ import annotations

from typing import Any

TASKS: dict[str, tuple[str, dict[str, Any], list[str], str | None]] = {
    "Counting Files": (
        "In ~/bakery/orders and below, hidden ones too, count the .csv files bigger than 2,048 bytes. Number only.",
        {
            "kind": "os_check",
            "init": "mkdir -p bakery/orders/archive bakery/orders/old.csv\nfor i in $(seq 1 30); do head -c $((i*100)) /dev/zero | tr '\\0' 'x' > bakery/orders/order-$i.csv; done\nfor i in 1 2 3 4 5; do head -c 2500 /dev/zero | tr '\\0' 'y' > bakery/orders/archive/2024-0$i.csv; done\nhead -c 5000 /dev/zero > bakery/orders/order-big.csv.bak\nhead -c 3000 /dev/zero > bakery/orders/.draft.csv\nhead -c 2048 /dev/zero > bakery/orders/edge.csv",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [{"kind": "integer", "expected": None, "script": ""}],
            "reference": "find ~/bakery/orders -type f -name '*.csv' -size +2048c | wc -l",
        },
        [
            "ls -la ~/bakery/orders | head -n 5",
            "find ~/bakery/orders -type f -name '*.csv' -size +2048c | wc -l",
        ],
        "16",
    ),
    "Finding Files": (
        "Which .log file under ~/bakery/logs, subfolders included, is the largest? Give its name without the folder.",
        {
            "kind": "os_check",
            "init": "mkdir -p bakery/logs/2025\nfor d in 01 02 03 04; do seq 1 $((10#$d*40)) | sed 's/^/oven temp reading /' > bakery/logs/2025/oven-$d.log; done\nseq 1 500 > bakery/logs/big-export.csv\nseq 1 90 > bakery/logs/proofing.log",
            "evaluation": "match",
            "expected": None,
            "pattern": "",
            "checks": [],
            "reference": "find ~/bakery/logs -type f -name '*.log' -printf '%s %f\\n' | sort -n | tail -n 1 | cut -d' ' -f2",
        },
        ["find ~/bakery/logs -type f -name '*.log' -printf '%s %p\\n' | sort -n | tail -n 3"],
        "oven-04.log",
    ),
    "Text Processing": (
        'Count the distinct customers with at least one order of bread exactly "rye" in ~/bakery/orders.csv; number only.',
        {
            "kind": "os_check",
            "init": "mkdir -p bakery\npython3 -c \"\nimport random\nrandom.seed(7)\nnames=['Nordlys Cafe','Fjord Deli','Kaia Bar','Molla','Havn Kitchen','Sjo Bistro','Brygga']\nprint('date,customer,bread,loaves')\nfor i in range(150):\n    print(f'2025-03-{1+i%28:02d},{random.choice(names)},{random.choice([\\\"rye\\\",\\\"wheat\\\",\\\"spelt\\\",\\\"Rye\\\"])},{random.randint(1,9)}')\n\" > bakery/orders.csv",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [{"kind": "integer", "expected": None, "script": ""}],
            "reference": "awk -F, 'NR>1 && $3==\"rye\" {print $2}' ~/bakery/orders.csv | sort -u | wc -l",
        },
        [
            "head -n 3 ~/bakery/orders.csv",
            "awk -F, 'NR>1 && $3==\"rye\" {print $2}' ~/bakery/orders.csv | sort -u | wc -l",
        ],
        None,
    ),
    "Changing Files": (
        "Please delete the empty .log files directly in ~/tidal/logs, and nothing else.",
        {
            "kind": "os_check",
            "init": "mkdir -p tidal/logs/old\nfor s in kyle swansea orkney; do : > tidal/logs/$s.log; echo 'turbine 4 ok' > tidal/logs/$s-busy.log; done\n: > tidal/logs/old/empty.log\n: > tidal/logs/notes.txt",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [
                {
                    "kind": "script",
                    "expected": None,
                    "script": "cd tidal/logs && [ ! -e kyle.log ] && [ ! -e swansea.log ] && [ ! -e orkney.log ] && [ -s kyle-busy.log ] && [ -e old/empty.log ] && [ -e notes.txt ]",
                }
            ],
            "reference": "find ~/tidal/logs -maxdepth 1 -type f -name '*.log' -empty -delete",
        },
        [
            "find ~/tidal/logs -maxdepth 1 -type f -name '*.log' -empty",
            "find ~/tidal/logs -maxdepth 1 -type f -name '*.log' -empty -delete && ls ~/tidal/logs",
        ],
        None,
    ),
    "Permissions and Metadata": (
        "Set the owner's execute bit on all the .sh scripts in ~/inv/scripts (subfolders too); don't touch any other permission.",
        {
            "kind": "os_check",
            "init": "mkdir -p inv/scripts/deploy\nfor n in backup rotate deploy/push; do printf '#!/bin/bash\\necho %s\\n' $n > inv/scripts/$n.sh; chmod 644 inv/scripts/$n.sh; done\nchmod 600 inv/scripts/rotate.sh\nprintf 'notes\\n' > inv/scripts/readme.sh.txt",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [
                {
                    "kind": "script",
                    "expected": None,
                    "script": 'cd inv/scripts && [ "$(stat -c %a backup.sh)" = 744 ] && [ "$(stat -c %a rotate.sh)" = 700 ] && [ "$(stat -c %a deploy/push.sh)" = 744 ] && [ "$(stat -c %a readme.sh.txt)" = 644 ]',
                }
            ],
            "reference": "find ~/inv/scripts -type f -name '*.sh' -exec chmod u+x {} +",
        },
        [
            "find ~/inv/scripts -type f -name '*.sh' -exec chmod u+x {} + && find ~/inv/scripts -type f -printf '%m %p\\n'"
        ],
        None,
    ),
    "Archives and Compression": (
        "How many lines does readings.csv have inside the backup ~/tidal/backup.tar.gz? A bare number, please.",
        {
            "kind": "os_check",
            "init": "mkdir -p tidal/src\nseq 1 137 | sed 's/^/2025-01-01,kyle,/' > tidal/src/readings.csv\nseq 1 12 > tidal/src/notes.txt\n(cd tidal/src && tar -czf ../backup.tar.gz readings.csv notes.txt)\nrm -r tidal/src",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [{"kind": "integer", "expected": None, "script": ""}],
            "reference": "tar -xzOf ~/tidal/backup.tar.gz readings.csv | wc -l",
        },
        ["tar -tzf ~/tidal/backup.tar.gz", "tar -xzOf ~/tidal/backup.tar.gz readings.csv | wc -l"],
        "137",
    ),
    "Writing a Script": (
        "I need ~/bakery/bin/total: an executable bash script that sums the loaves column of the CSV given as its only argument (header date,customer,loaves) and prints the sum alone. Run it once on ~/bakery/march.csv when done.",
        {
            "kind": "os_check",
            "init": "mkdir -p bakery\n{ echo date,customer,loaves; for i in $(seq 1 20); do echo 2025-03-$((i+5)),Molla,$i; done; } > bakery/march.csv",
            "evaluation": "checks",
            "expected": None,
            "pattern": "",
            "checks": [
                {
                    "kind": "script",
                    "expected": None,
                    "script": 'mkdir -p chk && printf \'date,customer,loaves\\n2025-04-01,Brygga,5\\n2025-04-02,Molla,7\\n\' > chk/in.csv && [ -x bakery/bin/total ] && [ "$(bakery/bin/total chk/in.csv)" = 12 ] && [ "$(bakery/bin/total bakery/march.csv)" = 210 ]',
                }
            ],
            "reference": "mkdir -p ~/bakery/bin && cat > ~/bakery/bin/total <<'EOF'\n#!/bin/bash\nawk -F, 'NR>1 {s+=$3} END {print s+0}' \"$1\"\nEOF\nchmod +x ~/bakery/bin/total && ~/bakery/bin/total ~/bakery/march.csv",
        },
        [
            "mkdir -p ~/bakery/bin && printf '#!/bin/bash\\nawk -F, '\"'\"'NR>1 {s+=$3} END {print s+0}'\"'\"' \"$1\"\\n' > ~/bakery/bin/total && chmod +x ~/bakery/bin/total && ~/bakery/bin/total ~/bakery/march.csv"
        ],
        None,
    ),
    "Question about the Environment": (
        "Where does the link ~/inv/current lead? Give the target as a path from ~/inv.",
        {
            "kind": "os_check",
            "init": "mkdir -p inv/releases/v1.4.2 inv/releases/v1.5.0\nln -s releases/v1.5.0 inv/current\nln -s releases/v1.4.2 inv/previous",
            "evaluation": "match",
            "expected": None,
            "pattern": "",
            "checks": [],
            "reference": "readlink ~/inv/current",
        },
        ["ls -l ~/inv"],
        "releases/v1.5.0",
    ),
}
