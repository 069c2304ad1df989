# Build the frozen one-folder app on Windows and run its self-test:
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Cpu] [-NoSelfTest] [-NoVenv] [-KeepAll]
#                                                              [-Dist DIR] [-Work DIR]
# 1. makes a virtual environment (build\venv) and installs the project with the `packaging` extra
#    (-Cpu first installs the CPU-only PyTorch build: a bundle without the CUDA libraries);
# 2. runs PyInstaller on packaging\image_alchemy.spec;
# 3. runs the frozen `ImageAlchemy.exe --self-test`;
# 4. prints where the bundle is, its size, and the self-test result.
# -NoVenv uses the python on PATH as it is; -KeepAll builds without the exclusions (to measure them).
param(
    [switch]$Cpu,
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
if (-not $NoVenv) {
    if (-not (Test-Path (Join-Path $Venv "Scripts\python.exe"))) {
        Write-Host "== making the build environment $Venv"
        Invoke-Checked "could not make a virtual environment" { & $Python -m venv $Venv }
    }
    $Python = Join-Path $Venv "Scripts\python.exe"
    Invoke-Checked "could not upgrade pip" { & $Python -m pip install --upgrade pip }
    if ($Cpu) {
        Write-Host "== installing the CPU-only PyTorch build"
        Invoke-Checked "could not install CPU-only PyTorch; check the network, or build without -Cpu" {
            & $Python -m pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
        }
    }
    Write-Host "== installing Image Alchemy with the packaging extra"
    Invoke-Checked "pip could not install the project" { & $Python -m pip install -e "$Root[packaging]" }
} elseif ($Cpu) {
    Fail "-Cpu installs PyTorch into the build environment; it cannot be combined with -NoVenv"
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
exit $Result
