# Build the frozen one-folder app on Windows from its lock and run its self-test:
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Cpu] [-Relock] [-NoSelfTest] [-NoVenv]
#                                                              [-KeepAll] [-Dist DIR] [-Work DIR]
# 1. picks this platform's lock (packaging\locks\windows-x86_64-py<XY>.txt; packaging\lock.py says
#    which) and makes the build environment (build\venv) from it: `pip install --require-hashes -r
#    LOCK`, then the project itself without dependencies; the environment is remade when the lock changes;
# 2. runs PyInstaller on packaging\image_alchemy.spec;
# 3. runs the frozen `ImageAlchemy.exe --self-test`;
# 4. prints where the bundle is, its size, and the self-test result.
# -Relock first re-resolves the newest allowed versions (uv, with hashes) into a candidate lock,
#    builds and self-tests from it, and only when the self-test passes writes it into packaging\locks\.
# -Cpu is accepted for symmetry with build.sh: PyPI's Windows PyTorch is the CPU-only build already.
# -NoVenv uses the python on PATH as it is (not the lock: a quick local try, never a release);
# -KeepAll builds without the exclusions (to measure them).
param(
    [switch]$Cpu,
    [switch]$Relock,
    [switch]$SelfTest,  # the default; accepted for symmetry with build.sh --self-test
    [switch]$NoSelfTest,
    [switch]$NoVenv,
    [switch]$KeepAll,
    [string]$Dist = "",
    [string]$Work = "",
    [string]$Venv = ""
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
if (-not $Dist) { $Dist = Join-Path $Root "dist" }
if (-not $Work) { $Work = Join-Path $Root "build\pyinstaller" }
if (-not $Venv) { $Venv = Join-Path $Root "build\venv" }

function Fail($Message) {
    Write-Host "error: $Message" -ForegroundColor Red
    exit 1
}

function Invoke-Checked($What, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { Fail "$What (exit status $LASTEXITCODE); see the messages above" }
}

$Python = "python"
if (Get-Command py -ErrorAction SilentlyContinue) { $Python = "py" }
$LockTool = Join-Path $Root "packaging\lock.py"
if ($Relock -and $NoSelfTest) { Fail "-Relock writes a lock only after the frozen self-test passes; drop -NoSelfTest" }
if (-not $NoVenv) {
    if ($Relock) {
        $Tools = Join-Path $Root "build\lock-tools"
        if (-not (Test-Path (Join-Path $Tools "Scripts\python.exe"))) {
            Invoke-Checked "could not make a virtual environment" { & $Python -m venv $Tools }
        }
        $ToolsPython = Join-Path $Tools "Scripts\python.exe"
        Invoke-Checked "could not install uv, the resolver; check the network" { & $ToolsPython -m pip install --quiet "uv>=0.5" }
        $Lock = Join-Path $Root "build\lock-candidate.txt"
        Write-Host "== resolving a new lock into $Lock"
        Invoke-Checked "could not resolve a new lock" { & $ToolsPython $LockTool resolve --out $Lock | Out-Null }
    } else {
        $Lock = & $Python $LockTool path
        if ($LASTEXITCODE -ne 0) { exit 1 }
    }
    $Stamp = & $Python $LockTool stamp $Lock
    $StampFile = Join-Path $Venv ".lock-stamp"
    $Current = if (Test-Path $StampFile) { (Get-Content $StampFile -Raw).Trim() } else { "" }
    if ($Current -ne $Stamp) {
        Write-Host "== making the build environment $Venv from $(Split-Path $Lock -Leaf)"
        if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
        Invoke-Checked "could not make a virtual environment" { & $Python -m venv $Venv }
        $VenvPython = Join-Path $Venv "Scripts\python.exe"
        Invoke-Checked "pip could not install the locked packages from $Lock" {
            & $VenvPython -m pip install --require-hashes --no-deps -r $Lock
        }
        Invoke-Checked "pip could not install the project" { & $VenvPython -m pip install --no-deps -e $Root }
        Set-Content -Path $StampFile -Value $Stamp
    } else {
        Write-Host "== build environment $Venv matches $(Split-Path $Lock -Leaf)"
    }
    $Python = Join-Path $Venv "Scripts\python.exe"
} elseif ($Relock) {
    Fail "-Relock builds from a new build environment; it cannot be combined with -NoVenv"
}

New-Item -ItemType Directory -Force -Path $Work, $Dist | Out-Null
$Log = Join-Path $Work "pyinstaller.log"
Write-Host "== PyInstaller (log: $Log)"
$env:ALCHEMY_KEEP_ALL = if ($KeepAll) { "1" } else { "0" }
$Clock = [Diagnostics.Stopwatch]::StartNew()
Push-Location $Root
try {
    & $Python -m PyInstaller --noconfirm --clean --distpath $Dist --workpath $Work packaging\image_alchemy.spec *> $Log
    $Status = $LASTEXITCODE
} finally {
    Pop-Location
}
if ($Status -ne 0) {
    Get-Content $Log -Tail 30
    Fail "PyInstaller failed; the whole log is $Log"
}
$BuildSeconds = [int]$Clock.Elapsed.TotalSeconds
Select-String -Path $Log -Pattern "image_alchemy.spec: left out" | ForEach-Object { $_.Line }

$Bundle = Join-Path $Dist "ImageAlchemy"
$Exe = Join-Path $Bundle "ImageAlchemy.exe"
if (-not (Test-Path $Exe)) { Fail "PyInstaller finished but $Exe is missing; see $Log" }
$Files = Get-ChildItem -Recurse -File $Bundle
$SizeGiB = "{0:N2}" -f (($Files | Measure-Object -Property Length -Sum).Sum / 1GB)
Write-Host "bundle:     $Bundle"
Write-Host "size:       $SizeGiB GiB in $($Files.Count) files"
Write-Host "build time: $BuildSeconds s"

$Result = 0
if (-not $NoSelfTest) {
    # A windowed exe has no console: give it pipes for stdout and stderr, then show what it wrote.
    Write-Host "== frozen self-test"
    $Out = Join-Path $Work "self-test.out"
    $Err = Join-Path $Work "self-test.err"
    $Clock = [Diagnostics.Stopwatch]::StartNew()
    $Process = Start-Process -FilePath $Exe -ArgumentList "--self-test" -NoNewWindow -Wait -PassThru `
        -RedirectStandardOutput $Out -RedirectStandardError $Err
    Get-Content $Out
    Get-Content $Err
    $Result = $Process.ExitCode
    $Verdict = if ($Result -eq 0) { "passed" } else { "FAILED (exit status $Result)" }
    Write-Host "self-test:  $Verdict in $([int]$Clock.Elapsed.TotalSeconds) s"
}
if ($Relock) {
    if ($Result -eq 0) {
        $Final = & $Python $LockTool target
        Move-Item -Force $Lock $Final
        Write-Host "lock:       wrote $Final (the build from it passed its self-test)"
    } else {
        Write-Host "lock:       unchanged; the candidate $Lock failed the self-test" -ForegroundColor Red
    }
}
exit $Result
